"""`newsletter dev`: the real command in a fresh instance folder, and the parts it is built from."""
from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from email.message import EmailMessage
from pathlib import Path

import pytest

from newsletter import articles, create_app, db, devservices, devstack, mailcatcher
from newsletter.mailcatcher import free_port


def processes_mentioning(folder: str) -> dict[int, str]:
    """Live processes whose environment, command line or working directory names `folder`.

    redis-server rewrites its environment (for its process title) but works in its data
    folder; zombies show none of the three.
    """
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            seen = (entry / "environ").read_bytes() + cmdline + os.readlink(entry / "cwd").encode()
        except OSError:
            continue
        if folder.encode() in seen:
            found[int(entry.name)] = cmdline.replace(b"\0", b" ").decode(errors="replace")
    return found


def newsletter_command() -> list[str]:
    script = shutil.which("newsletter", path=str(Path(sys.executable).parent)) or shutil.which("newsletter")
    return [script] if script else [sys.executable, "-c", "from newsletter.cli import main; main()"]


class DevProcess:
    """`newsletter dev --port PORT` in its own session, as a terminal would run it."""

    def __init__(self, instance: Path, port: int) -> None:
        self.instance, self.port = instance, port
        self.log_path = instance.parent / "dev.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
        env["NEWSLETTER_INSTANCE_PATH"] = str(instance)
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([*newsletter_command(), "dev", "--port", str(port)], env=env,
                                     cwd=instance.parent,  # no .env of the checkout
                                     stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, text: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log():
            if self.proc.poll() is not None:
                raise AssertionError(f"newsletter dev exited {self.proc.returncode}:\n{self.log()[-4000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {text!r} in {timeout} s:\n{self.log()[-4000:]}")
            time.sleep(0.2)

    def pids(self) -> dict[int, str]:
        """Every process the log names: the children, gunicorn's workers, redis-server."""
        log = self.log()
        named = {int(p): f"{n} (started)" for n, p in re.findall(r"(\w+) started \(pid (\d+)\)", log)}
        named |= {int(p): "redis-server" for p in re.findall(r"embedded Redis at \S+ \(pid (\d+)\)", log)}
        named |= {int(p): "gunicorn worker" for p in re.findall(r"Booting worker with pid: (\d+)", log)}
        return named

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=30) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def interrupt(self, timeout: float = 60) -> int:
        os.killpg(self.proc.pid, signal.SIGINT)  # what Ctrl-C in its terminal does
        return self.proc.wait(timeout)

    def cleanup(self) -> None:
        """After a failed test: end whatever is left of this run (by pid, found by its folder)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        for pid in processes_mentioning(str(self.instance)):
            os.kill(pid, signal.SIGKILL)
        self._log.close()


@pytest.fixture
def dev(tmp_path):
    started = []

    def start() -> DevProcess:
        proc = DevProcess(tmp_path / "instance", free_port())
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.cleanup()


def assert_nothing_left(dev_process: DevProcess, pids: dict[int, str]) -> None:
    assert len(pids) >= 6, f"expected web, worker, beat, 2 gunicorn workers, redis: {pids}"
    alive = {pid: name for pid, name in pids.items() if devservices.alive(pid)}
    assert not alive, f"still running: {alive}"
    assert not processes_mentioning(str(dev_process.instance)), "processes left behind"


def send_mail(smtp_url: str, subject: str) -> None:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "daily@localhost", "reader@example.org", subject
    msg.set_content("hello")
    host, port = smtp_url.removeprefix("smtp://").rsplit(":", 1)
    with smtplib.SMTP(host, int(port), timeout=10) as client:
        client.send_message(msg)


# ---------------------------------------------------------------- the real command

@pytest.mark.slow
def test_dev_runs_everything_and_ctrl_c_leaves_nothing_behind(dev):
    stack = dev()
    stack.wait_for("Press Ctrl-C")
    log = stack.log()
    assert f"site      http://127.0.0.1:{stack.port}/" in log
    assert f"http://127.0.0.1:{stack.port}/dev/mail" in log
    assert re.search(r"seed [a-z0-9-]+: .*seeds/", log)

    assert stack.get("/")[0] == 200
    smtp_url = re.search(r"mail catcher at (smtp://\S+),", log)[1]
    send_mail(smtp_url, "Through the dev stack")
    status, page = stack.get("/dev/mail")
    assert status == 200 and "Through the dev stack" in page
    assert (stack.instance / "mail").is_dir() and (stack.instance / "newsletter.db").is_file()

    stack.wait_for("celery@")  # the worker and beat are up before we stop them
    stack.wait_for("beat: Starting")
    pids = stack.pids()
    assert stack.interrupt() == 0, stack.log()[-3000:]
    assert_nothing_left(stack, pids)
    assert (stack.instance / "redis.rdb").is_file()  # Redis saved its data where it lives


@pytest.mark.slow
def test_dev_sells_the_membership_through_its_stripe_sandbox(dev):
    import requests

    from tests.support.membership import pay, start_checkout, submit

    stack = dev()
    stack.wait_for("Press Ctrl-C")
    assert re.search(r"Stripe sandbox at http://127\.0\.0\.1:\d+", stack.log())
    site = f"http://127.0.0.1:{stack.port}"
    with requests.Session() as browser:
        welcome = pay(browser, start_checkout(browser, site), "dev.member@example.com")
        assert "Welcome to the Community" in welcome.text
        deadline = time.monotonic() + 60  # the webhooks reach gunicorn, the worker writes them
        while "Active" not in (account := browser.get(f"{site}/account").text) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "Active" in account and "dev.member@example.com" in account
        assert stack.interrupt() == 0, stack.log()[-3000:]

        again = dev()   # the same instance folder: the sandbox still knows the member
        again.wait_for("Press Ctrl-C")
        site = f"http://127.0.0.1:{again.port}"
        portal = submit(browser, browser.get(f"{site}/account"), button="Manage membership and billing")
        assert portal.status_code == 303, portal.text[:300]
        assert "Cancel membership" in browser.get(portal.headers["Location"]).text
    assert again.interrupt() == 0, again.log()[-3000:]


@pytest.mark.slow
def test_a_child_that_dies_stops_the_rest(dev):
    stack = dev()
    stack.wait_for("Press Ctrl-C")
    stack.wait_for("celery@")
    pids = stack.pids()
    worker = next(pid for pid, name in pids.items() if name == "worker (started)")
    os.kill(worker, signal.SIGKILL)
    assert stack.proc.wait(60) == 1
    assert "worker exited unexpectedly" in stack.log()
    assert_nothing_left(stack, pids)


def test_a_busy_port_is_refused_before_anything_starts(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        stack = DevProcess(tmp_path / "instance", busy.getsockname()[1])
        try:
            assert stack.proc.wait(60) != 0
        finally:
            stack.cleanup()
    assert "cannot listen on 127.0.0.1" in stack.log() and "--port" in stack.log()
    assert not processes_mentioning(str(stack.instance))


# ---------------------------------------------------------------- its parts

def test_first_start_loads_the_seeds_once(app):
    console = devstack.Console(io.StringIO())
    devstack.prepare_database(app, console)
    with app.app_context():
        loaded = articles.latest(db.session(), limit=100)
    assert loaded
    assert f"seed {loaded[0].slug}" in console.out.getvalue()

    again = devstack.Console(io.StringIO())
    devstack.prepare_database(app, again)
    assert "seed" not in again.out.getvalue()
    with app.app_context():
        assert len(articles.latest(db.session(), limit=100)) == len(loaded)


def test_embedded_redis_lives_only_inside_with(tmp_path):
    with devservices.EmbeddedRedis(tmp_path / "instance" / "redis.rdb") as server:
        pid, socket_file = server.pid, server.url.removeprefix("unix://")
        assert devservices.alive(pid)
        from newsletter.redis_url import client

        c = client(server.url)
        c.set("k", "v")
        c.close()
    assert not devservices.alive(pid)
    assert not os.path.exists(socket_file)
    assert (tmp_path / "instance" / "redis.rdb").is_file()


def test_the_stripe_sandbox_keeps_its_state_in_the_instance_folder(tmp_path):
    from newsletter.billing import Billing

    app = create_app({"INSTANCE_PATH": str(tmp_path / "instance"), "SECRET_KEY": "x",
                      "STRIPE_SECRET_KEY": None})
    state_file = tmp_path / "instance" / devservices.STRIPE_STATE_FILE

    def run() -> tuple[str, str]:
        console = devstack.Console(io.StringIO())
        with contextlib.ExitStack() as stack:
            env = devservices.start_stripe_sandbox(app, stack, console, "http://127.0.0.1:9")
            billing = Billing(env["NEWSLETTER_STRIPE_SECRET_KEY"], env["NEWSLETTER_STRIPE_API_BASE"])
            return console.out.getvalue(), billing.price_id()

    said, price_id = run()
    assert f"keeping its state in {state_file}" in said and state_file.is_file()
    assert run()[1] == price_id
    state_file.write_text('{"format": 1, "objects": {')
    said, new_price_id = run()
    assert "could not be read" in said and new_price_id != price_id
    assert len(list(state_file.parent.glob("stripe-sandbox.json.broken-*"))) == 1


def test_the_catcher_server_in_the_stack_stores_in_the_apps_folder(tmp_path):
    app = create_app({"INSTANCE_PATH": str(tmp_path / "instance"), "SECRET_KEY": "x",
                      "REDIS_URL": "redis://127.0.0.1:1/0", "SMTP_URL": None})
    console = devstack.Console(io.StringIO())
    with contextlib.ExitStack() as stack:
        env = devservices.start_services(app, stack, console)
        assert set(env) == {"NEWSLETTER_SMTP_URL", "NEWSLETTER_MAIL_CATCHER"}
        send_mail(env["NEWSLETTER_SMTP_URL"], "kept")
    assert [m.subject for m in mailcatcher.list_messages(tmp_path / "instance" / "mail")] == ["kept"]


def test_children_share_the_instance_and_learn_the_base_url(tmp_path, monkeypatch):
    app = create_app({"INSTANCE_PATH": str(tmp_path / "instance"), "SECRET_KEY": "x"})
    monkeypatch.delenv("NEWSLETTER_BASE_URL", raising=False)
    env = devstack.child_env(app, {"NEWSLETTER_REDIS_URL": "unix:///r.sock"}, "http://127.0.0.1:5001")
    assert env["NEWSLETTER_INSTANCE_PATH"] == str((tmp_path / "instance").resolve())
    assert env["NEWSLETTER_BASE_URL"] == "http://127.0.0.1:5001"
    assert env["NEWSLETTER_REDIS_URL"] == "unix:///r.sock"
    monkeypatch.setenv("NEWSLETTER_BASE_URL", "https://news.example.org")
    assert devstack.child_env(app, {}, "http://127.0.0.1:5001")["NEWSLETTER_BASE_URL"] == "https://news.example.org"


@pytest.mark.parametrize("host, url", [("127.0.0.1", "http://127.0.0.1:5000"),
                                       ("0.0.0.0", "http://127.0.0.1:5000"),
                                       ("::", "http://[::1]:5000")])
def test_site_url(host, url):
    assert devstack.site_url(host, 5000) == url
