"""The database layer: migrations, SQLite's settings, UTC datetimes, on the run's backend."""
from __future__ import annotations

import os
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.exc import StatementError

from newsletter import create_app, db
from newsletter.models import Article
from tests.factories import make_article


@pytest.fixture
def empty_database_url(tmp_path):
    """A database with no tables at all, on the backend this run uses."""
    server = os.environ.get("NEWSLETTER_TEST_DATABASE_URL")
    if not server:
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    name = f"nltest_empty_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(db.engine_url(server), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield db.engine_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def empty_app(app_config, empty_database_url):
    app = create_app(app_config | {"DATABASE_URL": empty_database_url})
    yield app
    db.engine(app).dispose()


def _head() -> str:
    heads = ScriptDirectory.from_config(db.alembic_config()).get_heads()
    assert len(heads) == 1, f"migrations must form one line of history, not {heads}"
    return heads[0]


def _current_revision(app) -> str | None:
    with db.engine(app).connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def test_upgrade_migrates_an_empty_database_to_head(empty_app):
    assert _current_revision(empty_app) is None

    result = empty_app.test_cli_runner().invoke(args=["db", "upgrade"])

    assert result.exit_code == 0, result.output
    assert _current_revision(empty_app) == _head()
    tables = set(sa.inspect(db.engine(empty_app)).get_table_names())
    assert set(db.Base.metadata.tables) <= tables


def test_upgrade_twice_changes_nothing(empty_app):
    db.upgrade(empty_app)
    db.upgrade(empty_app)

    assert _current_revision(empty_app) == _head()


def test_migrations_match_the_models(empty_app):
    db.upgrade(empty_app)

    with db.engine(empty_app).connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, db.Base.metadata)

    assert differences == [], "models changed without a migration (or the reverse)"


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path):
    # Always checked on SQLite, whatever the run's backend: it is the embedded default.
    engine = db.make_engine(f"sqlite:///{tmp_path / 'wal.db'}")
    try:
        with engine.connect() as connection:
            pragmas = {name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
                       for name in ("journal_mode", "foreign_keys", "synchronous")}
        assert pragmas == {"journal_mode": "wal", "foreign_keys": 1, "synchronous": 1}  # NORMAL
    finally:
        engine.dispose()


def test_naive_datetimes_are_refused(session):
    with pytest.raises(StatementError) as raised:
        make_article(session, published_at=datetime(2026, 11, 25, 9, 30))

    assert isinstance(raised.value.orig, ValueError)
    assert "naive datetime" in str(raised.value.orig)


def test_aware_datetimes_come_back_as_utc(app, session):
    oslo_morning = datetime(2026, 11, 25, 9, 30, tzinfo=timezone(timedelta(hours=1)))
    article = make_article(session, published_at=oslo_morning)
    session.commit()

    with app.app_context():
        loaded = db.session().get(Article, article.id)
        published, created = loaded.published_at, loaded.created_at

    assert published == oslo_morning
    assert published.utcoffset() == timedelta(0)
    assert published.replace(tzinfo=None) == datetime(2026, 11, 25, 8, 30)
    assert created.utcoffset() == timedelta(0)


def test_aware_datetimes_come_back_as_utc_whatever_the_servers_zone(app, session):
    # A PostgreSQL server set up in a newsroom's own zone hands timestamptz values back
    # in that zone; SQLite keeps none, so there this reads back as above.
    article = make_article(session, published_at=datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc))
    session.commit()
    engine = db.engine(app)
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            connection.exec_driver_sql("SET LOCAL TIME ZONE 'Europe/Oslo'")
        published = connection.execute(
            sa.select(Article.published_at).where(Article.id == article.id)).scalar_one()

    assert published.utcoffset() == timedelta(0)
    assert published == datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)


def test_upgrade_to_an_unknown_revision_is_a_clear_error(empty_app):
    result = empty_app.test_cli_runner().invoke(args=["db", "upgrade", "--revision", "nosuch"])

    assert result.exit_code == 1
    assert "Error: Can't locate revision identified by 'nosuch'" in result.output
    assert "Traceback" not in result.output and _current_revision(empty_app) is None
