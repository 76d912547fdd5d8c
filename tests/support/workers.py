"""Real Celery worker processes for tests, on the test's database, Redis and SMTP server."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ENV_KEYS = ("DATABASE_URL", "REDIS_URL", "SMTP_URL", "SECRET_KEY", "BASE_URL", "INSTANCE_PATH",
            "MAIL_FROM", "STRIPE_SECRET_KEY", "STRIPE_API_BASE", "STRIPE_WEBHOOK_SECRET")


def app_env(app_config: dict) -> dict:
    """The environment that gives a child process the same configuration as the test app."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    for key in ENV_KEYS:
        if app_config.get(key) is not None:
            env[f"NEWSLETTER_{key}"] = str(app_config[key])
    env["PYTHONUNBUFFERED"] = "1"
    return env


class WorkerProcess:
    """`celery -A workers worker`, started now; ready once it logs that it is."""

    def __init__(self, app_config: dict, log: Path, concurrency: int = 2, name: str | None = None,
                 extra_env: dict | None = None) -> None:
        self.log_path = log
        env = app_env(app_config) | (extra_env or {})
        self.name = name or f"w{os.getpid()}-{time.monotonic_ns()}"
        cmd = [sys.executable, "-m", "celery", "-A", "workers", "worker", "-l", "info",
               "-c", str(concurrency), "-n", f"{self.name}@%h", "--without-gossip",
               "--without-mingle", "--without-heartbeat", "-P", "prefork"]
        self._log = open(log, "ab")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.wait_ready()

    def wait_ready(self, timeout: float = 60) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if "ready." in self.log():
                return
            if self.proc.poll() is not None:
                raise RuntimeError("worker exited: " + self.log()[-2000:])
            time.sleep(0.1)
        raise TimeoutError("worker not ready: " + self.log()[-2000:])

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group (the main process and its pool children)."""
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.kill(signal.SIGTERM)
        self._log.close()
