"""Alembic environment: migrates the database named by -x url=, the config, or LINLI_DATABASE_URL."""

import warnings
from logging.config import fileConfig

from sqlalchemy.exc import SAWarning
from sqlalchemy.types import TypeDecorator

import web.models  # noqa: F401  (registers every table)
from alembic import context
from web.config import database_url
from web.db import EXPRESSION_INDEXES, Base, make_engine

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def _url() -> str:
    return (
        context.get_x_argument(as_dictionary=True).get("url")
        or config.attributes.get("url")
        or database_url()
    )


def _render_item(type_, obj, autogen_context):
    """Render our TypeDecorators as the plain types they store, so migrations stand alone."""
    if type_ == "type" and isinstance(obj, TypeDecorator):
        autogen_context.imports.add("import sqlalchemy as sa")
        return f"sa.{obj.impl!r}"
    return False


def _include_object(obj, name, type_, reflected, compare_to) -> bool:
    return not (type_ == "index" and name in EXPRESSION_INDEXES)


def _configure(connection=None, url=None) -> None:
    context.configure(
        render_item=_render_item,
        include_object=_include_object,
        connection=connection,
        url=url,
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite alters tables by copying them
        compare_type=True,
    )


def run_migrations_offline() -> None:
    _configure(url=_url())
    with context.begin_transaction():
        context.run_migrations()


def _run(connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction(), warnings.catch_warnings():
        # SQLAlchemy and Alembic cannot reflect SQLite's expression indexes and say so; those
        # are the EXPRESSION_INDEXES, left out of the comparison on purpose.
        for name in EXPRESSION_INDEXES:
            warnings.filterwarnings("ignore", category=SAWarning, message=(
                f"Skipped unsupported reflection of expression-based index {name}"))
            warnings.filterwarnings("ignore", category=UserWarning, message=(
                f"autogenerate skipping metadata-specified expression-based index '{name}'"))
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(_url())
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
