"""Configuration: embedded defaults, then NEWSLETTER_* from the environment, then tests'."""
from __future__ import annotations

import multiprocessing
import os
import stat

import pytest
import sqlalchemy as sa

from newsletter import config, create_app, db


@pytest.fixture
def environ(monkeypatch):
    """monkeypatch, with every NEWSLETTER_* variable of the calling shell removed."""
    for key in list(os.environ):
        if key.startswith("NEWSLETTER_"):
            monkeypatch.delenv(key)
    return monkeypatch


@pytest.fixture
def make_app(tmp_path):
    """create_app on a private instance folder; engines are disposed afterwards."""
    apps = []

    def make(test_config: dict | None = None):
        app = create_app({"INSTANCE_PATH": str(tmp_path / "instance")} | (test_config or {}))
        apps.append(app)
        return app

    yield make
    for app in apps:
        db.engine(app).dispose()


def test_environment_variables_are_read_with_their_prefix(environ, make_app):
    environ.setenv("NEWSLETTER_BASE_URL", "https://news.example.org/")
    environ.setenv("NEWSLETTER_MAIL_FROM", "Morning Brief <brief@news.example.org>")
    environ.setenv("NEWSLETTER_FEED_POLL_MINUTES", "5")
    environ.setenv("NEWSLETTER_FEEDS", '["https://wire.example.org/rss"]')

    app = make_app()

    assert app.config["BASE_URL"] == "https://news.example.org"
    assert app.config["MAIL_FROM"] == "Morning Brief <brief@news.example.org>"
    # from_prefixed_env reads values as JSON where they parse, as text otherwise.
    assert app.config["FEED_POLL_MINUTES"] == 5
    assert app.config["FEEDS"] == ["https://wire.example.org/rss"]


def test_test_mapping_wins_over_the_environment(environ, make_app):
    environ.setenv("NEWSLETTER_BASE_URL", "https://from-environment.example")
    environ.setenv("NEWSLETTER_SECRET_KEY", "from-environment")

    app = make_app({"BASE_URL": "https://from-test.example", "SECRET_KEY": "from-test"})

    assert app.config["BASE_URL"] == "https://from-test.example"
    assert app.config["SECRET_KEY"] == "from-test"


def test_unset_variables_fall_back_to_the_embedded_defaults(environ, make_app, tmp_path):
    app = make_app()

    instance = tmp_path / "instance"
    assert app.instance_path == str(instance)
    assert app.config["DATABASE_URL"] == f"sqlite:///{instance / 'newsletter.db'}"
    assert app.config["REDIS_URL"] is None
    assert app.config["MAIL_CATCHER_DIR"] == str(instance / "mail")
    assert app.config["BASE_URL"] == "http://127.0.0.1:5000"


def test_secret_key_is_generated_once_and_kept_in_the_instance_folder(environ, make_app,
                                                                      tmp_path):
    first = make_app().config["SECRET_KEY"]
    second = make_app().config["SECRET_KEY"]

    key_file = tmp_path / "instance" / "secret_key"
    assert first == second == key_file.read_text().strip()
    assert len(bytes.fromhex(first)) == 32
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert [p.name for p in key_file.parent.iterdir() if p.name.startswith(".secret")] == []


def test_secret_key_from_the_environment_writes_no_file(environ, make_app, tmp_path):
    environ.setenv("NEWSLETTER_SECRET_KEY", "operator-chosen")

    assert make_app().config["SECRET_KEY"] == "operator-chosen"
    assert not (tmp_path / "instance" / "secret_key").exists()


def _read_secrets(paths, barrier, results) -> None:
    for path in paths:
        barrier.wait()
        results.put((str(path), config.instance_secret(path)))


def test_processes_starting_together_agree_on_one_secret_key(tmp_path):
    # As gunicorn's workers do on a first start: each process races to create the key.
    processes, rounds = 6, 10
    paths = [tmp_path / f"round{n}" / "secret_key" for n in range(rounds)]
    for path in paths:
        path.parent.mkdir()
    ctx = multiprocessing.get_context("spawn")  # fork() of a threaded pytest is unsafe
    barrier, results = ctx.Barrier(processes), ctx.Queue()
    children = [ctx.Process(target=_read_secrets, args=(paths, barrier, results))
                for _ in range(processes)]
    for child in children:
        child.start()
    keys = [results.get(timeout=60) for _ in range(processes * rounds)]
    for child in children:
        child.join(30)
        assert child.exitcode == 0

    for path in paths:
        seen = {key for where, key in keys if where == str(path)}
        assert seen == {path.read_text().strip()}
        assert [p.name for p in path.parent.iterdir()] == ["secret_key"]


@pytest.mark.parametrize("plain", ["postgresql://reader@db.example:5432/news",
                                   "postgres://reader@db.example/news"])
def test_plain_postgresql_url_picks_psycopg(plain):
    url = db.engine_url(plain)

    assert url.drivername == "postgresql+psycopg"
    assert (url.host, url.database, url.username) == ("db.example", "news", "reader")
    assert db.make_engine(plain).dialect.driver == "psycopg"


def test_explicit_drivers_are_kept():
    assert db.engine_url("postgresql+psycopg2://h/news").drivername == "postgresql+psycopg2"
    assert db.engine_url("sqlite:///news.db").drivername == "sqlite"


def test_app_connects_with_the_plain_url_of_the_test_database(database_url, make_app):
    plain = sa.make_url(database_url)
    if plain.get_backend_name() == "postgresql":
        plain = plain.set(drivername="postgresql")
    app = make_app({"DATABASE_URL": plain.render_as_string(hide_password=False)})

    with db.engine(app).connect() as connection:
        assert connection.execute(sa.text("SELECT 1")).scalar() == 1
    expected = {"postgresql": "psycopg", "sqlite": "pysqlite"}[plain.get_backend_name()]
    assert db.engine(app).dialect.driver == expected
