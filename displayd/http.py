"""HTTP plumbing shared by every route: the error shape, the body-size limit, cursors.

Every error leaves as `{"error": code, "detail": text}`. The body limit is plain ASGI (not
`BaseHTTPMiddleware`) so the board poll path pays one dict lookup for it.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from displayd.errors import DisplaydError, InvalidInput

log = logging.getLogger("displayd.http")


def error_response(status: int, error: str, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status, headers=headers)


_HTTP_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 406: "not_acceptable", 409: "conflict", 413: "payload_too_large",
    415: "unsupported_media_type", 422: "invalid_input", 429: "too_many_requests",
}


_SOURCES = frozenset({"body", "query", "path", "header", "cookie"})
_BODY_PARSE_ERROR = "There was an error parsing the body"  # fastapi.routing, for bodies it cannot decode


def _describe_validation(exc: RequestValidationError) -> tuple[str, str]:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return "invalid_json", "the request body is not valid JSON"
    parts = []
    for e in errors[:5]:
        # ("query", "from") names the parameter `from`: where it was sent adds nothing.
        where = list(e.get("loc", ()))
        if where and where[0] in _SOURCES:
            where = where[1:]
        loc = ".".join(str(p) for p in where) or "body"
        msg = str(e.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}")
    return "invalid_input", "; ".join(parts)


def install_error_handlers(app: FastAPI) -> None:
    async def on_domain(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DisplaydError)
        return error_response(exc.status_code, exc.code, exc.detail, exc.headers())

    async def on_validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        code, detail = _describe_validation(exc)
        return error_response(422, code, detail)

    async def on_http(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 400 and exc.detail == _BODY_PARSE_ERROR:
            # FastAPI's answer to a body that is not UTF-8; the same mistake as bad JSON, so the
            # same documented 422 rather than an undocumented 400.
            return error_response(422, "invalid_json", "the request body is not valid JSON")
        code = _HTTP_CODES.get(exc.status_code, "error")
        return error_response(exc.status_code, code, str(exc.detail), getattr(exc, "headers", None))

    async def on_database(_: Request, exc: Exception) -> JSONResponse:
        # SQLite answers a writer that waited out the busy timeout with "database is locked".
        # Writes are short and bounded, so this should never happen; if it does, the client is
        # told to try again rather than shown the database's message.
        if "database is locked" in str(exc) or "database is busy" in str(exc):
            log.error("the database stayed locked past the busy timeout: %s", exc)
            return error_response(503, "busy", "the database is busy; try again in a moment",
                                  {"Retry-After": "1"})
        raise exc

    app.add_exception_handler(DisplaydError, on_domain)
    app.add_exception_handler(OperationalError, on_database)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)


class BodyLimit:
    """413 for request bodies over `max_bytes`, by Content-Length or by counting the stream."""

    def __init__(self, app: ASGIApp, max_bytes: int, larger: Mapping[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.larger = dict(larger or {})  # path -> limit, for the few bulk endpoints

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        limit = self.larger.get(scope["path"], self.max_bytes)
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    too_big = int(value) > limit
                except ValueError:
                    too_big = False
                if too_big:
                    await self._reject(send, limit)
                    return
        # Bodies here are small (≤ max_bytes), so read them whole before the app runs:
        # an oversized stream is refused before anything could act on part of it.
        chunks: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # client went away
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > limit:
                await self._reject(send, limit)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _reject(self, send: Send, limit: int) -> None:
        body = json.dumps({
            "error": "payload_too_large",
            "detail": f"request bodies are limited to {limit} bytes",
        }).encode()
        await send({"type": "http.response.start", "status": 413, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]})
        await send({"type": "http.response.body", "body": body})


def keyset_page(rows: Sequence[Any], limit: int) -> tuple[list[Any], str | None]:
    """A page of rows fetched with `limit + 1`, and the cursor after it (None at the end).

        rows = await service.list_slogans(session, limit=limit + 1, after_id=after_id)
        items, next_cursor = keyset_page(rows, limit)
    """
    if len(rows) > limit:
        return list(rows[:limit]), encode_cursor({"id": rows[limit - 1].id})
    return list(rows), None


def encode_cursor(values: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, separators=(",", ":")).encode()).decode().rstrip("=")


INT64_MAX = 2**63 - 1


def decode_cursor(
    cursor: str, keys: tuple[str, ...], *, kind: type[int] | type[str] = int, maximum: int = INT64_MAX
) -> dict[str, Any]:
    """The values of an opaque cursor made by `encode_cursor`; 422 if it was tampered with.

    Every value must be of `kind` (ints within 0..`maximum`, strings without NUL): the values
    go into a keyset comparison, and PostgreSQL answers a string compared with an integer
    column, an out-of-range integer or a NUL byte with an error rather than an empty page.
    """
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidInput("cursor is not one this server issued") from None
    if not isinstance(values, dict) or set(values) != set(keys):
        raise InvalidInput("cursor is not one this server issued")
    for value in values.values():
        if kind is int:
            valid = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= maximum
        else:
            valid = isinstance(value, str) and len(value) <= 200 and "\x00" not in value
        if not valid:
            raise InvalidInput("cursor is not one this server issued")
    return values
