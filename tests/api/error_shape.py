"""The one error shape, asserted the same way by every API test module."""

from __future__ import annotations


def refused(response, status: int, code: str | None = None) -> dict:
    """The response is the one error shape with `status` (and `code`); returns the error."""
    body = response.get_json(silent=True)
    assert response.status_code == status, (response.status_code, body)
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert error["status"] == status and error["code"] and error["message"], body
    if code is not None:
        assert error["code"] == code, body
    return error
