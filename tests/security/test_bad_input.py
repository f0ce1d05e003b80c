"""A bad-input corpus for every write endpoint the OpenAPI document advertises.

For each POST/PATCH operation a fresh target is prepared (a draft, an approved slogan, a
campaign, a board) with a valid base body, and the body is then broken one way at a time:
oversized, not JSON, an array for the object, an unknown field, nulls in required fields,
each field of the wrong type, out-of-range numbers, and text with zero-width, bidi, control
and other characters that render as nothing. Each must be a 4xx with exactly
`{"error", "detail"}` and leave every table's row count (and the target as `GET` shows it)
as it was.

Text that is legitimately acceptable (NFD or mixed normalisation, markup, SQL-looking text)
may instead be accepted, and then it is stored NFC-normalised and otherwise verbatim.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import Keys
from tests.factories import Factory
from tests.security.conftest import api_operations, row_counts

TEN_MB = 10 * 1024 * 1024


@dataclass(frozen=True)
class Target:
    url: str
    body: dict[str, Any] | None  # None: the operation takes no body
    entity: str | None = None    # GET this before and after a rejected request
    who: str = "admin"


Prepare = Callable[[Factory, int], Awaitable[Target]]


async def _draft(f: Factory, n: int) -> dict[str, Any]:
    return await f.draft(f"Khẩu hiệu chuẩn bị {n}")


async def _slogans_post(f: Factory, n: int) -> Target:
    return Target("/api/v1/slogans", {"text": f"Khẩu hiệu mới {n}", "number": 1, "source": "101-HD/BTGTU mục IV",
                                      "tags": ["70-nam"]}, who="editor")


async def _slogan_patch(f: Factory, n: int) -> Target:
    s = await _draft(f, n)
    return Target(f"/api/v1/slogans/{s['id']}", {"text": f"Khẩu hiệu đã sửa {n}", "number": 2, "source": "Nguồn",
                                                  "tags": ["sua"]}, f"/api/v1/slogans/{s['id']}", who="editor")


async def _slogan_approve(f: Factory, n: int) -> Target:
    s = await _draft(f, n)
    return Target(f"/api/v1/slogans/{s['id']}/approve",
                  {"content_hash": s["content_hash"], "reference": "101-HD/BTGTU"},
                  f"/api/v1/slogans/{s['id']}", who="approver")


async def _slogan_retire(f: Factory, n: int) -> Target:
    s = await f.approved(f"Khẩu hiệu sẽ thu hồi {n}")
    return Target(f"/api/v1/slogans/{s['id']}/retire", {"reason": "Sai chính tả"},
                  f"/api/v1/slogans/{s['id']}", who="approver")


def _campaign_fields(playlist: list[int]) -> dict[str, Any]:
    return {"timezone": "Asia/Ho_Chi_Minh", "daily_hours": [{"start": "06:00", "end": "22:00"}],
            "dwell_seconds": 30, "priority": 200, "order": "sequential",
            "playlist": [{"slogan_id": s, "weight": 2} for s in playlist], "targets": {"groups": ["so-tttt"]}}


async def _group_board(f: Factory, n: int) -> None:
    """A board in the group the campaigns target: targets must name what exists."""
    await f.board(f"bang-nhom-{n}", groups=["so-tttt"])


async def _campaigns_post(f: Factory, n: int) -> Target:
    ids = await f.approved_ids()
    await _group_board(f, n)
    return Target("/api/v1/campaigns", {**f.campaign_body(f"Đợt {n}", ids), **_campaign_fields(ids)}, who="editor")


async def _campaign_patch(f: Factory, n: int) -> Target:
    c = await f.campaign(f"Đợt {n}")
    await _group_board(f, n)
    body = {"name": f"Đợt sửa {n}", "starts_at": "2024-05-02T00:00:00Z", "ends_at": "2024-06-02T00:00:00Z",
            **_campaign_fields(await f.approved_ids())}
    return Target(f"/api/v1/campaigns/{c['id']}", body, f"/api/v1/campaigns/{c['id']}", who="editor")


async def _campaign_action(f: Factory, n: int, action: str) -> Target:
    c = await f.campaign(f"Đợt {n}", paused=action == "resume")
    return Target(f"/api/v1/campaigns/{c['id']}/{action}", None, f"/api/v1/campaigns/{c['id']}", who="editor")


BOARD_FIELDS = {"name": "Bảng sảnh chính", "location": "Sảnh tầng 1", "groups": ["so-tttt"], "delivery": "push",
                "endpoint_url": "http://127.0.0.1:9/show", "charset": "utf-8", "max_chars": 40, "lines": 2,
                "offset": 0, "enabled": True}


async def _boards_post(f: Factory, n: int) -> Target:
    return Target("/api/v1/boards", {"id": f"bang-moi-{n}", **BOARD_FIELDS})


async def _board_patch(f: Factory, n: int) -> Target:
    b = await f.board(f"bang-{n}")
    return Target(f"/api/v1/boards/{b['id']}", dict(BOARD_FIELDS), f"/api/v1/boards/{b['id']}")


async def _board_credentials(f: Factory, n: int) -> Target:
    b = await f.board(f"bang-{n}")
    return Target(f"/api/v1/boards/{b['id']}/credentials", None, f"/api/v1/boards/{b['id']}")


async def _boards_import(f: Factory, n: int) -> Target:
    return Target("/api/v1/boards/import", {"boards": [{"id": f"bang-nhap-{n}", **BOARD_FIELDS}]})


async def _keys_post(f: Factory, n: int) -> Target:
    return Target("/api/v1/keys", {"name": f"Chuyên viên {n}", "role": "operator"})


async def _key_revoke(f: Factory, n: int) -> Target:
    made = await f.key("operator", f"Khoá sẽ thu hồi {n}")
    return Target(f"/api/v1/keys/{made['id']}/revoke", None)


async def _emergency_stop(f: Factory, n: int) -> Target:
    # None may hold, so that an accepted reason comes back as the new stop's (404 when none did).
    await f.client.delete("/api/v1/emergency-stop", headers=f.keys.auth("admin"))
    return Target("/api/v1/emergency-stop", {"reason": f"Dừng khẩn cấp {n}"}, "/api/v1/emergency-stop")


CORPUS: dict[tuple[str, str], Prepare] = {
    ("POST", "/api/v1/slogans"): _slogans_post,
    ("PATCH", "/api/v1/slogans/{slogan_id}"): _slogan_patch,
    ("POST", "/api/v1/slogans/{slogan_id}/approve"): _slogan_approve,
    ("POST", "/api/v1/slogans/{slogan_id}/retire"): _slogan_retire,
    ("POST", "/api/v1/campaigns"): _campaigns_post,
    ("PATCH", "/api/v1/campaigns/{campaign_id}"): _campaign_patch,
    ("POST", "/api/v1/campaigns/{campaign_id}/pause"): lambda f, n: _campaign_action(f, n, "pause"),
    ("POST", "/api/v1/campaigns/{campaign_id}/resume"): lambda f, n: _campaign_action(f, n, "resume"),
    ("POST", "/api/v1/boards"): _boards_post,
    ("POST", "/api/v1/boards/import"): _boards_import,
    ("PATCH", "/api/v1/boards/{board_id}"): _board_patch,
    ("POST", "/api/v1/boards/{board_id}/credentials"): _board_credentials,
    ("POST", "/api/v1/keys"): _keys_post,
    ("POST", "/api/v1/keys/{key_id}/revoke"): _key_revoke,
    ("POST", "/api/v1/emergency-stop"): _emergency_stop,
}

# Response fields that keep a request field under another name.
STORED_AS = {"reason": "retire_reason", "reference": "approval_reference"}
REJECTED_TEXT = {"zero-width space": "\u200b", "zero-width joiner": "\u200d", "bidi override": "\u202e",
                 "bidi isolate": "\u2066", "BOM": "\ufeff", "bell": "\u0007", "NUL": "\u0000", "DEL": "\u007f",
                 "C1 control": "\u0085", "Hangul filler": "\u3164", "braille blank": "\u2800",
                 "variation selector": "\ufe0f"}
ACCEPTABLE_TEXT = {"markup": "<script>alert('x')</script><b>", "SQL": "'; DROP TABLE slogan; --",
                   "quotes": '" OR 1=1 -- \\'}
HUGE = {"2**63": "9223372036854775808", "1e309": "1e309", "-1": "-1", "10**100": "1" + "0" * 100,
        "float": "1.5", "-2**63-1": "-9223372036854775809"}


@dataclass(frozen=True)
class Variant:
    name: str
    raw: bytes            # the request body as sent
    field: str | None = None
    acceptable: Any = None  # the value stored if the server accepts it; None: must be rejected


def _dump(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode()


def _raw_with(body: dict[str, Any], field: str, literal: str) -> bytes:
    marker = "__RAW_LITERAL__"
    return _dump({**body, field: marker}).replace(f'"{marker}"'.encode(), literal.encode())


def _wrong_type(value: Any) -> Any:
    if isinstance(value, bool):
        return "perhaps"
    if isinstance(value, int):
        return "bốn mươi"
    if isinstance(value, str):
        return 12345
    if isinstance(value, list):
        return {"0": value[0] if value else 1}
    return [value]


SIZE_VARIANTS = [Variant("10 MB body", b"{" + b" " * TEN_MB + b"}"),
                 Variant("64 KiB + 1 body", b"[" + b"0," * (32 * 1024) + b"0]")]
BODY_LIMITS = {"/api/v1/boards/import": 4 * 1024 * 1024}  # the bulk endpoint's own limit; 64 KiB elsewhere


def variants(body: dict[str, Any] | None, required: list[str], body_required: bool) -> list[Variant]:
    """Every way this endpoint's body is broken (or, for text, legitimately odd), but size."""
    out: list[Variant] = []
    if body is None:
        return out
    out += [Variant("truncated JSON", _dump(body)[:-3]), Variant("single quotes", b"{'a': 1}"),
            Variant("not UTF-8", b'{"x": "\xff\xfe"}'), Variant("NaN", b"NaN"),
            Variant("array for object", _dump([body])), Variant("string for object", _dump("body")),
            Variant("unknown field", _dump({**body, "is_admin": True})),
            Variant("prototype field", _dump({**body, "__proto__": {"x": 1}}))]
    if body_required:
        out += [Variant("empty body", b""), Variant("null body", b"null")]
    out += [Variant(f"null {field}", _dump({**body, field: None})) for field in required]
    for field, value in body.items():
        out.append(Variant(f"wrong type {field}", _dump({**body, field: _wrong_type(value)})))
        if isinstance(value, int) and not isinstance(value, bool):
            out += [Variant(f"{field}={label}", _raw_with(body, field, literal)) for label, literal in HUGE.items()]
        if isinstance(value, str):
            middle = max(1, len(value) // 2)
            for label, char in REJECTED_TEXT.items():
                broken = value[:middle] + char + value[middle:]
                out.append(Variant(f"{label} in {field}", _dump({**body, field: broken})))
            nfd = unicodedata.normalize("NFD", value)
            mixed = value[:middle] + unicodedata.normalize("NFD", value[middle:])
            out += [Variant(f"NFD {field}", _dump({**body, field: nfd}), field, unicodedata.normalize("NFC", nfd)),
                    Variant(f"mixed NFC/NFD {field}", _dump({**body, field: mixed}), field,
                            unicodedata.normalize("NFC", mixed))]
            for label, text in ACCEPTABLE_TEXT.items():
                out.append(Variant(f"{label} in {field}", _dump({**body, field: text}), field, text))
        if isinstance(value, list) and value and isinstance(value[0], str):
            for label, char in REJECTED_TEXT.items():
                out.append(Variant(f"{label} in {field}[0]", _dump({**body, field: ["a" + char + "b"]})))
        if isinstance(value, list) and value and isinstance(value[0], dict):
            out.append(Variant(f"array in {field}[0]", _dump({**body, field: [list(value[0].values())]})))
            for key in value[0]:
                for label, literal in HUGE.items():
                    item = _raw_with(value[0], key, literal).decode()
                    raw = _dump({**body, field: "__ITEM__"}).replace(b'"__ITEM__"', f"[{item}]".encode())
                    out.append(Variant(f"{field}[0].{key}={label}", raw))
        if isinstance(value, dict):
            out.append(Variant(f"array for {field}", _dump({**body, field: list(value)})))
    return out


def _request_schema(app: FastAPI, method: str, path: str) -> tuple[list[str], bool]:
    """(required fields, whether a body is required) from the OpenAPI document."""
    document = app.openapi()
    operation = document["paths"][path][method.lower()]
    request_body = operation.get("requestBody")
    if request_body is None:
        return [], False
    schema = request_body["content"]["application/json"]["schema"]
    for option in schema.get("anyOf", [schema]):
        if "$ref" in option:
            schema = document["components"]["schemas"][option["$ref"].rsplit("/", 1)[1]]
            break
    return list(schema.get("required", [])), bool(request_body.get("required"))


def test_every_write_endpoint_has_a_corpus(app: FastAPI) -> None:
    writes = {(m, p) for m, p in api_operations(app) if m in ("POST", "PATCH", "PUT")}
    assert writes == set(CORPUS), "a write endpoint without a bad-input corpus (or a stale entry)"


def _stored(response: httpx.Response, field: str) -> Any:
    stored = response.json()
    return stored[field] if field in stored else stored.get(STORED_AS.get(field, field))


@pytest.mark.parametrize(("method", "path"), sorted(CORPUS))
async def test_bad_input(app: FastAPI, client: httpx.AsyncClient, keys: Keys, factory: Factory,
                         engine: AsyncEngine, no_dns: list[str], method: str, path: str) -> None:
    prepare = CORPUS[(method, path)]
    required, body_required = _request_schema(app, method, path)
    problems: list[str] = []
    n, index = 0, 0
    target: Target | None = None
    cases: list[Variant] = []
    # A rejected request changes nothing (that is checked), so one target serves until a
    # variant is accepted; then a fresh one (with fresh unique names) is made.
    while True:
        if target is None:
            n += 1
            target = await prepare(factory, n)
            cases = [*SIZE_VARIANTS, *variants(target.body, required, body_required)]
        if index == len(cases):
            break
        variant = cases[index]
        index += 1
        headers = {**keys.auth(target.who), "Content-Type": "application/json"}
        before_rows = await row_counts(engine)
        before = (await client.get(target.entity, headers=keys.auth("admin"))).json() if target.entity else None
        response = await client.request(method, target.url, content=variant.raw, headers=headers)
        where = f"{variant.name}: {response.status_code} {response.text[:200]}"
        if variant.acceptable is not None and response.status_code < 300:
            stored = _stored(response, variant.field or "")
            expected = variant.acceptable if not isinstance(stored, list) else [variant.acceptable]
            if stored != expected:
                problems.append(f"{where}: stored {stored!r}, expected {expected!r}")
            target = None
            continue
        if not 400 <= response.status_code < 500:
            problems.append(f"{where}: expected a 4xx")
            target = None
            continue
        if variant in SIZE_VARIANTS and len(variant.raw) > BODY_LIMITS.get(path, 64 * 1024) \
                and response.status_code != 413:
            problems.append(f"{where}: expected 413")
        if set(response.json()) != {"error", "detail"}:
            problems.append(f"{where}: error body is not exactly {{error, detail}}")
        if await row_counts(engine) != before_rows:
            problems.append(f"{where}: row counts changed")
        if target.entity:
            after = (await client.get(target.entity, headers=keys.auth("admin"))).json()
            if after != before:
                problems.append(f"{where}: the target changed")
    assert not problems, "\n".join(problems)


async def test_markup_and_sql_in_a_slogan_come_back_verbatim(client: httpx.AsyncClient, keys: Keys,
                                                             engine: AsyncEngine) -> None:
    for text in ACCEPTABLE_TEXT.values():
        created = await client.post("/api/v1/slogans", json={"text": text}, headers=keys.auth("editor"))
        assert created.status_code == 201, created.text
        assert created.json()["text"] == text
        read = await client.get(f"/api/v1/slogans/{created.json()['id']}", headers=keys.auth("operator"))
        assert read.json()["text"] == text
        found = await client.get("/api/v1/slogans", params={"q": text}, headers=keys.auth("operator"))
        assert [s["text"] for s in found.json()["items"]] == [text]
    assert (await row_counts(engine))["slogan"] == len(ACCEPTABLE_TEXT)  # the table is still there


async def test_nfd_text_is_the_same_slogan(client: httpx.AsyncClient, keys: Keys, engine: AsyncEngine) -> None:
    nfc = "Chiến thắng Điện Biên Phủ"
    created = await client.post("/api/v1/slogans", json={"text": unicodedata.normalize("NFD", nfc)},
                                headers=keys.auth("editor"))
    assert created.status_code == 201 and created.json()["text"] == nfc
    before = await row_counts(engine)
    mixed = "Chiến " + unicodedata.normalize("NFD", "thắng Điện Biên Phủ")
    again = await client.post("/api/v1/slogans", json={"text": mixed}, headers=keys.auth("editor"))
    assert again.status_code == 409 and set(again.json()) == {"error", "detail"}
    assert await row_counts(engine) == before


async def test_oversized_chunked_body_is_413(client: httpx.AsyncClient, keys: Keys, engine: AsyncEngine) -> None:
    """No Content-Length: the limit is enforced by counting the stream."""
    async def chunks() -> Any:
        for _ in range(160):
            yield b" " * 65536

    before = await row_counts(engine)
    response = await client.post("/api/v1/slogans", content=chunks(),
                                 headers={**keys.auth("editor"), "Content-Type": "application/json"})
    assert response.status_code == 413 and set(response.json()) == {"error", "detail"}
    assert await row_counts(engine) == before
