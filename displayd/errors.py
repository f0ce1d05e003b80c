"""Domain errors. Services raise these; one handler in `displayd.http` turns them into
`{"error": code, "detail": text}` with the status each class carries.

    DisplaydError
    ├── InvalidInput        422 invalid_input
    ├── Unauthenticated     401 unauthorized
    ├── NotPermitted        403 forbidden
    ├── ResourceNotFound    404 not_found
    ├── Conflict            409 conflict
    │   └── ContentChanged  409 content_changed
    ├── RangeTooLarge       422 range_too_large
    ├── PlanFailed          422 plan_error
    ├── TooManyFailures     429 too_many_failures   (with Retry-After)
    └── Unavailable         503 unavailable
"""

from __future__ import annotations

__all__ = [
    "Conflict",
    "ContentChanged",
    "DisplaydError",
    "InvalidInput",
    "NotPermitted",
    "PlanFailed",
    "RangeTooLarge",
    "ResourceNotFound",
    "TooManyFailures",
    "Unauthenticated",
    "Unavailable",
]


class DisplaydError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    def headers(self) -> dict[str, str] | None:
        """Response headers the error's status calls for (`Retry-After` for a 429)."""
        return {"WWW-Authenticate": "Bearer"} if self.status_code == 401 else None


class InvalidInput(DisplaydError):
    status_code = 422
    code = "invalid_input"


class Unauthenticated(DisplaydError):
    status_code = 401
    code = "unauthorized"


class NotPermitted(DisplaydError):
    status_code = 403
    code = "forbidden"


class ResourceNotFound(DisplaydError):
    status_code = 404
    code = "not_found"

    def __init__(self, kind: str, ident: object) -> None:
        super().__init__(f"{kind} {ident!s} does not exist")


class Conflict(DisplaydError):
    status_code = 409
    code = "conflict"


class ContentChanged(Conflict):
    """The text changed since the approver read it (the `content_hash` they name is stale)."""

    code = "content_changed"


class RangeTooLarge(DisplaydError):
    status_code = 422
    code = "range_too_large"


class PlanFailed(DisplaydError):
    """A board's plan cannot be computed (a `plan_error`); the board is idle meanwhile."""

    status_code = 422
    code = "plan_error"


class TooManyFailures(DisplaydError):
    """Too many failed sign-ins from one address: refused for `retry_after` seconds."""

    status_code = 429
    code = "too_many_failures"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str] | None:
        return {"Retry-After": str(self.retry_after)}


class Unavailable(DisplaydError):
    status_code = 503
    code = "unavailable"
