"""Domain errors. Services raise these; one handler in `displayd.http` turns them into
`{"error": code, "detail": text}` with the status each class carries.

    DisplaydError
    ├── InvalidInput        422 invalid_input
    ├── Unauthenticated     401 unauthorized
    ├── NotPermitted        403 forbidden
    ├── ResourceNotFound    404 not_found
    ├── Conflict            409 conflict
    ├── RangeTooLarge       422 range_too_large
    ├── PlanFailed          422 plan_error
    └── Unavailable         503 unavailable
"""

from __future__ import annotations

__all__ = [
    "Conflict",
    "DisplaydError",
    "InvalidInput",
    "NotPermitted",
    "PlanFailed",
    "RangeTooLarge",
    "ResourceNotFound",
    "Unauthenticated",
    "Unavailable",
]


class DisplaydError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


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


class RangeTooLarge(DisplaydError):
    status_code = 422
    code = "range_too_large"


class PlanFailed(DisplaydError):
    """A board's plan cannot be computed (a `plan_error`); the board is idle meanwhile."""

    status_code = 422
    code = "plan_error"


class Unavailable(DisplaydError):
    status_code = 503
    code = "unavailable"
