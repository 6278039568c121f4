"""Indexes that `linli db check` cannot compare (expression indexes, see web/db.py): each exists
after the migrations, and the query it was made for is answered from it."""

import pytest
from sqlalchemy import event, text

from web.db import EXPRESSION_INDEXES
from web.services import demands

pytestmark = pytest.mark.db


def test_every_index_left_out_of_db_check_exists_after_the_migrations(connection):
    names = (text("SELECT indexname FROM pg_indexes") if connection.dialect.name == "postgresql"
             else text("SELECT name FROM sqlite_master WHERE type = 'index'"))
    assert EXPRESSION_INDEXES <= set(connection.scalars(names))


def _board_query(session, world) -> tuple[str, object]:
    """The SQL of one demand-board page, as the unit's board asks for it."""
    seen = []

    def keep(conn, cursor, statement, parameters, context, executemany):
        if "ORDER BY" in statement and "FROM demand_items" in statement:
            seen.append((statement, parameters))

    bind = session.connection()
    event.listen(bind, "before_cursor_execute", keep)
    try:
        demands.list_demands(session, actor=world.actor("unit_x"),
                             filters={"claimable": True}, sort="-urgency")
    finally:
        event.remove(bind, "before_cursor_execute", keep)
    return seen[0]


@pytest.mark.postgresql
def test_the_demand_board_reads_its_page_in_order_from_its_index(session, world):
    statement, parameters = _board_query(session, world)
    raw = session.connection().connection.dbapi_connection.cursor()
    # Rule out every other way to the rows, so the plan shows whether the index can give the
    # board's order: a plan that still sorts means the expression or the condition do not match.
    for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):
        raw.execute(f"SET LOCAL {setting} = off")
    raw.execute("EXPLAIN " + statement, parameters)
    plan = "\n".join(row[0] for row in raw.fetchall())
    assert "ix_demand_items_board" in plan and "Sort" not in plan, plan
