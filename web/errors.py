"""Domain errors. Each carries the HTTP status it is answered with and a stable code.

The service layer raises these; the API maps them to the one error shape
`{"error": {"code", "message", "status", "fields"?}}`.
"""

from __future__ import annotations


class LinliError(Exception):
    """Base of every error the service layer raises on purpose."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, fields: dict | None = None, **params):
        super().__init__(message)
        self.message = message
        self.fields = fields
        self.params = params


class ValidationError(LinliError):
    """Input that breaks a rule: answered 422 naming each bad field."""

    status = 422
    code = "validation_error"


class NotFoundError(LinliError):
    """The object does not exist or is outside the caller's scope."""

    status = 404
    code = "not_found"

    def __init__(self, what: str, ident=None):
        super().__init__(f"{what} not found", what=what, id=ident)


class PermissionDeniedError(LinliError):
    """The caller's roles do not allow this action."""

    status = 403
    code = "forbidden"


class AuthenticationError(LinliError):
    """No valid credentials."""

    status = 401
    code = "unauthenticated"


class ConflictError(LinliError):
    """The action conflicts with the current state (quantity gone, duplicate claim, …)."""

    status = 409
    code = "conflict"


class IllegalTransitionError(ConflictError):
    """A status move that the state machine does not allow."""

    code = "illegal_transition"

    def __init__(self, machine: str, current: str, target: str):
        super().__init__(
            f"{machine}: cannot move from '{current}' to '{target}'",
            machine=machine,
            current=current,
            target=target,
        )


class IdempotencyKeyReusedError(ConflictError):
    """An idempotency key sent again with a different request."""

    code = "idempotency_key_reused"


class InsufficientPointsError(ConflictError):
    """A wallet (or the fund) holds less than the request needs; nothing moved."""

    code = "insufficient_points"


class OutOfStockError(ConflictError):
    """An item has less stock than the basket asks for; nothing moved."""

    code = "out_of_stock"


class LimitReachedError(ConflictError):
    """A per-person monthly limit of an item would be exceeded; nothing moved."""

    code = "limit_reached"


class AlreadyPostedError(ConflictError):
    """A transfer for this source (a service record, an order's refund) exists already."""

    code = "already_posted"


class RateLimitedError(LinliError):
    """Too many attempts in a short time (signing in, moving points): answered 429 with
    Retry-After; nothing was done."""

    status = 429
    code = "rate_limited"

    def __init__(self, retry_after: int):
        super().__init__(f"too many requests; try again in {retry_after} seconds",
                         retry_after=retry_after)
        self.headers = {"Retry-After": str(retry_after)}
