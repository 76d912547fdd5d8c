"""The database: one engine per app, one session per app context, Alembic migrations.

Domain functions take the session as an argument and only flush; the caller (a view, a
task, a command) commits. Work that a commit justifies is queued by newsletter.queue
after that commit.
"""
from __future__ import annotations

from pathlib import Path

from flask import Flask, current_app, g
from sqlalchemy import MetaData, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def dialect_insert(session: Session, model):
    """INSERT for the session's database, with its ON CONFLICT clause (both of ours have one)."""
    return _INSERTS[session.get_bind().dialect.name](model)


def insert_ignoring_duplicate(session: Session, model, values: dict, key: str) -> bool:
    """INSERT … ON CONFLICT (key) DO NOTHING: a lost race is no error. True when this call
    inserted the row."""
    # RETURNING, not rowcount: psycopg reports -1 for an INSERT … ON CONFLICT through SQLAlchemy.
    statement = dialect_insert(session, model).values(**values).on_conflict_do_nothing(index_elements=[key])
    return session.execute(statement.returning(getattr(model, key))).first() is not None


# PostgreSQL refuses NUL in text, in a column as in a query's parameter (a DataError: a 500
# or a failed task); SQLite takes it. A string from outside that reaches SQL is refused where
# it is validated (addresses, seed files) or goes through one of these two first.
NUL = "\x00"


def holds_nul(text: str) -> bool:
    """Whether `text` holds a NUL: no row has it, and PostgreSQL cannot even look for it."""
    return NUL in text


def without_nul(text: str) -> str:
    """`text` with its NULs dropped: for what we keep as evidence (a user agent, a page), not
    for what is looked up (a slug: use holds_nul and say not found)."""
    return text.replace(NUL, "")


def engine_url(url: str):
    """Pick our driver for plain URLs: `postgresql://` means psycopg 3 here."""
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def make_engine(url: str) -> Engine:
    """An engine with the settings every process of ours wants."""
    parsed = engine_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(parsed, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(parsed, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL lets the web, the workers and the CLI read while one of them writes.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def init_app(app: Flask) -> None:
    url = app.config["DATABASE_URL"]
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////:memory"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = make_engine(url)
    app.extensions["db"] = sessionmaker(engine, expire_on_commit=False)
    app.teardown_appcontext(_close_session)


def engine(app: Flask | None = None) -> Engine:
    return (app or current_app).extensions["db"].kw["bind"]


def session() -> Session:
    """The session of the current app context (a request, a task, a command)."""
    if "db_session" not in g:
        g.db_session = current_app.extensions["db"]()
    return g.db_session


def _close_session(_exc) -> None:
    s = g.pop("db_session", None)
    if s is not None:
        s.close()


def upgrade(app: Flask, revision: str = "head") -> None:
    """Create or migrate the schema with Alembic."""
    from alembic import command

    with engine(app).begin() as connection:
        cfg = alembic_config()
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)


def alembic_config():
    from alembic.config import Config

    here = Path(__file__).parent / "migrations"
    cfg = Config()
    cfg.set_main_option("script_location", str(here))
    return cfg
