"""`GET /api/v1/boards/{id}/current`: the board poll path, answered from memory.

This is the hot path: every board polls it, often. It is plain ASGI in front of FastAPI
(no routing, no dependency injection, no response-model validation) and touches no
database for a board token: one SHA-256, two dict lookups and the pre-encoded answer of
`Snapshot.poll` (with `next` once the next slot is within the board's lead). Staff keys
are accepted too (their role is cached by hash after the first use). The FastAPI route of
the same path exists for the OpenAPI document and calls the same `answer`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from displayd import runtime as runtimes  # a module: it imports this package in turn
from displayd.auth.guard import Kind
from displayd.auth.keys import hash_secret
from displayd.auth.roles import Permission
from displayd.errors import TooManyFailures
from displayd.protocol import BOARD_TOKEN_PREFIX, bearer_token

if TYPE_CHECKING:
    from collections.abc import Sequence

    from starlette.applications import Starlette
    from starlette.types import ASGIApp, Receive, Scope, Send

    from displayd.runtime import Runtime

PREFIX = "/api/v1/boards/"
SUFFIX = "/current"
MAX_ETAGS = 4  # a board names what it shows, perhaps what it showed before: a few tags, never many
JSON_TYPE = b"application/json"
TEXT_TYPE = b"text/plain; charset=utf-8"

log = logging.getLogger("displayd.polls")


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


def _error(status: int, error: str, detail: str) -> Answer:
    body = json.dumps({"error": error, "detail": detail}).encode()
    headers = [(b"content-type", JSON_TYPE)]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    return Answer(status, headers, body)


def etag_tags(if_none_match: str) -> list[str]:
    """The first MAX_ETAGS entity tags of an If-None-Match header (weak prefixes dropped);
    the rest is never read, so a poll never does unbounded work."""
    return [tag.strip().removeprefix("W/") for tag in if_none_match.split(",", MAX_ETAGS)[:MAX_ETAGS]]


async def answer(runtime: Runtime, board_id: str, *, authorization: str | None, if_none_match: str | None,
                 query: str, client: str = "unknown") -> Answer:
    """The whole poll answer for `board_id`; `client` is the address a refused credential is
    reported under."""
    refused = await _refusal(runtime, board_id, authorization, client)
    if refused is not None:
        return refused
    return content(runtime, board_id, if_none_match=if_none_match, query=query)


async def _refusal(runtime: Runtime, board_id: str, authorization: str | None, client: str) -> Answer | None:
    """The error answer when the credential may not read `board_id`'s content; None when it may."""
    token = bearer_token(authorization)
    if token is None:
        return _error(401, "unauthorized", "a board token or an API key is required (Authorization: Bearer …)")
    snapshot = runtime.live.snapshot
    if token.startswith(BOARD_TOKEN_PREFIX):
        own = snapshot.token_boards.get(hash_secret(token))
        if own is None:
            runtime.guard.failed(Kind.BOARD_TOKEN, client)  # counted and logged, never held
            return _error(401, "unauthorized", "the board token is not valid")
        if own != board_id:  # another board's token learns nothing, not even that the board exists
            return _error(404, "not_found", f"board {board_id} does not exist")
    else:
        try:
            runtime.guard.check(client)
        except TooManyFailures as exc:
            return Answer(429, [(b"content-type", JSON_TYPE), (b"retry-after", b"%d" % exc.retry_after)],
                          json.dumps({"error": exc.code, "detail": exc.detail}).encode())
        principal = await runtime.key_cache.principal(hash_secret(token))
        if principal is None:
            runtime.guard.failed(Kind.API_KEY, client)
            return _error(401, "unauthorized", "the API key is not valid")
        if not principal.may(Permission.READ):
            return _error(403, "forbidden", f"the {principal.role} role may not read boards")
    return None


def content(runtime: Runtime, board_id: str, *, if_none_match: str | None, query: str) -> Answer:
    """The answer to a credential that may read `board_id`: its content, or 304 when
    `if_none_match` names it."""
    snapshot = runtime.live.snapshot
    if board_id not in snapshot.boards:
        return _error(404, "not_found", f"board {board_id} does not exist")

    as_text = False
    if query:
        fmt = dict(parse_qsl(query)).get("format", "json")
        if fmt not in ("json", "text"):
            return _error(422, "invalid_input", "format must be json or text")
        as_text = fmt == "text"

    now = runtime.clock()
    if as_text:  # the simplest controllers: what shows now, no `next`; they poll at the slot's end
        showing = snapshot.showing(board_id, now)
        body, etag, max_age = showing.text, showing.text_etag, showing.max_age(now)
    else:
        showing, body, etag, max_age = snapshot.poll(board_id, now)
    headers = [(b"etag", etag.encode()), (b"cache-control", b"max-age=%d" % max_age)]
    tags: Sequence[str] = ()  # read only when nothing matched (a board naming content it was never given)
    if if_none_match is None:
        matched = False
    elif if_none_match == etag:  # what a board sends: the one tag it was given
        matched = True
    else:
        tags = etag_tags(if_none_match)
        matched = etag in tags or if_none_match.strip() == "*"
    runtime.polls.seen(board_id, showing, now, tags, matched)
    if matched:
        return Answer(304, headers, b"")
    headers.append((b"content-type", TEXT_TYPE if as_text else JSON_TYPE))
    return Answer(200, headers, body)


class KnownTokens:
    """The `Authorization` header values that were valid board tokens, by board: a board's
    next poll skips the parse and the SHA-256 of its token. Only accepted tokens are kept, at
    most one entry per board (a new one replaces the board's last), and the whole book is
    dropped when the snapshot's tokens change (a rotation or a deletion takes effect at once).
    The raw values are what this process reads off every request anyway."""

    def __init__(self) -> None:
        self._of: dict[str, str] | None = None  # the snapshot's token_boards these were checked against
        self._boards: dict[str, str] = {}  # header value → board id
        self._values: dict[str, str] = {}  # board id → its header value

    def board(self, token_boards: dict[str, str], authorization: str) -> str | None:
        if token_boards is not self._of:
            self._of = token_boards
            self._boards.clear()
            self._values.clear()
            return None
        return self._boards.get(authorization)

    def remember(self, token_boards: dict[str, str], authorization: str, board_id: str) -> None:
        if token_boards is not self._of:
            return  # checked against tokens that are no longer the snapshot's
        earlier = self._values.get(board_id)
        if earlier is not None:
            del self._boards[earlier]
        self._boards[authorization] = board_id
        self._values[board_id] = authorization


class PollPath:
    """ASGI middleware answering `/api/v1/boards/{id}/current` before FastAPI sees it."""

    def __init__(self, app: ASGIApp, owner: Starlette) -> None:
        self.app = app
        self.owner = owner  # the displayd app whose runtime answers (its lifespan builds it)
        self.known = KnownTokens()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            path: str = scope["path"]
            if path.startswith(PREFIX) and path.endswith(SUFFIX):
                board_id = path[len(PREFIX):-len(SUFFIX)]
                if board_id and "/" not in board_id:
                    await self._answer(scope, send, board_id)
                    return
        await self.app(scope, receive, send)

    async def _answer(self, scope: Scope, send: Send, board_id: str) -> None:
        authorization = if_none_match = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"if-none-match":
                if_none_match = value.decode("latin-1")
        runtime = runtimes.runtime_of(self.owner)
        query = scope["query_string"].decode("latin-1")
        token_boards = runtime.live.snapshot.token_boards
        if authorization is not None and self.known.board(token_boards, authorization) == board_id:
            result = content(runtime, board_id, if_none_match=if_none_match, query=query)
        else:
            client = scope.get("client")
            result = await answer(runtime, board_id, authorization=authorization, if_none_match=if_none_match,
                                  query=query, client=client[0] if client else "unknown")
            if result.status < 400 and authorization is not None and \
                    (bearer_token(authorization) or "").startswith(BOARD_TOKEN_PREFIX):
                self.known.remember(token_boards, authorization, board_id)
        metrics = runtime.metrics  # a poll costs two integer adds here, never a prometheus_client call
        metrics.polls += 1
        status = result.status
        if status == 304:
            metrics.polls_not_modified += 1
        elif status >= 400:  # the error branch only: 200 and 304 log nothing
            log.info("poll answered %d", status, extra={"event": "poll_error", "board_id": board_id,
                                                        "status": status})
        headers = result.headers
        if result.status != 304:
            headers = [*headers, (b"content-length", b"%d" % len(result.body))]
        await send({"type": "http.response.start", "status": result.status, "headers": headers})
        # HEAD: the same headers (Content-Length of the GET answer), no body.
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else result.body})
