"""The database itself refuses to rewrite history."""

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from web.services import demands

pytestmark = pytest.mark.db


def _first_event_id(world) -> int:
    return demands.history(world.session, actor=world.actor("sec_a1"), demand_id=world["d_a1"])[0].id


@pytest.mark.parametrize("statement", [
    "UPDATE audit_events SET reason = 'rewritten' WHERE id = :id",
    "DELETE FROM audit_events WHERE id = :id",
])
def test_the_database_refuses_to_change_or_delete_an_audit_event(world, connection, statement):
    event_id = _first_event_id(world)
    savepoint = connection.begin_nested()
    with pytest.raises(DatabaseError, match="append-only"):
        connection.execute(text(statement), {"id": event_id})
    savepoint.rollback()
    reason = connection.execute(text("SELECT reason FROM audit_events WHERE id = :id"),
                                {"id": event_id}).scalar_one_or_none()
    assert reason != "rewritten"
    assert connection.execute(text("SELECT COUNT(*) FROM audit_events WHERE id = :id"),
                              {"id": event_id}).scalar_one() == 1
