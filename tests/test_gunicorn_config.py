"""The web process's gunicorn settings, as gunicorn itself resolves them, and a real server."""
from __future__ import annotations

import http.client
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from newsletter import devstack
from newsletter.mailcatcher import free_port

ROOT = Path(__file__).resolve().parent.parent
APP = "newsletter:create_app()"


def resolved(*args: str, cwd: Path = ROOT, **env: str) -> dict[str, str]:
    """gunicorn's settings as it prints them (--print-config), started in `cwd`."""
    environ = {k: v for k, v in os.environ.items() if k not in ("WEB_CONCURRENCY", "GUNICORN_CMD_ARGS")} | env
    out = subprocess.run([sys.executable, "-m", "gunicorn", "--print-config", *args, APP], cwd=cwd, env=environ,
                         capture_output=True, text=True, check=True).stdout
    pairs = (line.split(" = ", 1) for line in out.splitlines() if " = " in line)
    return {name.strip(): value.strip() for name, value in pairs}


def test_started_from_the_repository_gunicorn_runs_threads_with_keep_alive():
    settings = resolved()

    assert [settings[n] for n in ("worker_class", "threads", "workers", "keepalive")] == ["gthread", "4", "2", "75"]


def test_the_platform_and_the_command_line_still_choose():
    assert resolved(WEB_CONCURRENCY="3")["workers"] == "3"
    assert resolved("--threads", "8")["threads"] == "8"
    assert resolved(GUNICORN_CMD_ARGS="--keep-alive 5")["keepalive"] == "5"


def test_newsletter_dev_runs_the_same_settings_from_any_folder(tmp_path):
    web = devstack.commands(tmp_path, "127.0.0.1", 5000)["web"]
    config = web[web.index("--config") + 1]

    settings = resolved("--config", config, cwd=tmp_path)
    assert [settings[n] for n in ("worker_class", "threads", "keepalive")] == ["gthread", "4", "75"]


def test_a_browser_connection_is_kept_alive_across_requests(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEWSLETTER_", "WEB_CONCURRENCY", "GUNICORN"))}
    env |= {"NEWSLETTER_INSTANCE_PATH": str(tmp_path / "instance"),
            "NEWSLETTER_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}"}
    log = tmp_path / "gunicorn.log"
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1",
                               "--error-logfile", str(log), *devstack.quiet_gunicorn(), APP], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    connection = None
    try:
        connection = answered(port, server, log)
        first_socket = connection.sock
        for _ in range(3):
            connection.request("GET", "/healthz")
            response = connection.getresponse()
            assert (response.status, response.read()) == (200, b"ok")
            assert response.getheader("Connection", "").lower() != "close"
            assert connection.sock is first_socket  # the same connection, not a new one each time
    finally:
        if connection is not None:
            connection.close()
        server.terminate()
        server.wait(30)


def answered(port: int, server: subprocess.Popen, log: Path, timeout: float = 60) -> http.client.HTTPConnection:
    """A connection on which gunicorn has answered /healthz once."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if server.poll() is not None:
            pytest.fail("gunicorn exited: " + log.read_text(errors="replace")[-2000:])
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            connection.request("GET", "/healthz")
            connection.getresponse().read()
            return connection
        except OSError:
            connection.close()
            time.sleep(0.2)
    pytest.fail("gunicorn did not answer")
