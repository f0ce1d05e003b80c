"""Schemathesis over the whole OpenAPI document, with every staff role's real key.

Each operation gets positive (schema-conforming) and negative cases, some with path
parameters naming real objects (slogans, a campaign, boards seeded first). Every answer
must be a non-5xx response that the document describes: status code, content type,
headers and body schema (`ErrorResponse` for every error).

Schemathesis only generates the cases and checks the answers; the requests go through the
test's own `httpx.AsyncClient` on the event loop that owns the database engine (asyncpg
connections belong to one loop). Hypothesis runs in a worker thread and hands each request
back to that loop.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import Keys
from tests.factories import Factory

ROLES = ("admin", "editor", "approver", "operator")
EXAMPLES = 20  # per operation, per role, per database: about a minute for the whole matrix
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]
REQUEST_TIMEOUT = 30.0


async def _seed(factory: Factory) -> dict[str, list[Any]]:
    """Objects for path parameters to name: approved and draft slogans, campaigns, boards."""
    approved = await factory.approved_ids()
    drafts = [(await factory.draft(f"Bản nháp kiểm thử {n}"))["id"] for n in range(2)]
    campaigns = [(await factory.campaign("Đợt kiểm thử"))["id"],
                 (await factory.campaign("Đợt tạm dừng", paused=True))["id"]]
    boards = [(await factory.board(board_id))["id"] for board_id in ("bang-mot", "bang-hai")]
    return {"slogan_id": [*approved, *drafts], "campaign_id": campaigns, "board_id": boards}


def _strategy(operation: Any, pools: dict[str, list[Any]]) -> Any:
    strategies = []
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        names = [p.name for p in operation.path_parameters]
        for name in names:
            for value in pools.get(name, []):
                strategies.append(operation.as_strategy(mode, path_parameters={name: value}))
        strategies.append(operation.as_strategy(mode))
    return st.one_of(*strategies)


def _request(case: Any, key: str) -> dict[str, Any]:
    """httpx arguments for `case` (Schemathesis serialises for `requests`)."""
    kwargs = case.as_transport_kwargs(base_url="http://displayd.test")
    # Negative cases may carry a generated Authorization header; the role's key always wins
    # (missing and broken keys are test_auth_edges' business).
    headers = {k: v for k, v in (kwargs.get("headers") or {}).items() if k.lower() != "authorization"}
    headers["Authorization"] = f"Bearer {key}"
    request: dict[str, Any] = {"method": kwargs["method"], "url": kwargs["url"],
                               "headers": headers, "params": kwargs.get("params")}
    if "json" in kwargs:
        request["json"] = kwargs["json"]
    elif kwargs.get("data") is not None:
        data = kwargs["data"]
        request["content"] = data if isinstance(data, bytes | str) else str(data)
    if kwargs.get("cookies"):
        request["cookies"] = kwargs["cookies"]
    return request


@pytest.mark.parametrize("role", ROLES)
async def test_openapi_fuzz(app: FastAPI, client: httpx.AsyncClient, keys: Keys, factory: Factory,
                            no_dns: list[str], role: str) -> None:
    pools = await _seed(factory)
    schema = schemathesis.openapi.from_dict(app.openapi())
    loop = asyncio.get_running_loop()
    key = getattr(keys, role)

    async def send(case: Any) -> httpx.Response:
        return await client.request(**_request(case, key))

    def fuzz(operation: Any) -> None:
        @given(case=_strategy(operation, pools))
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None, print_blob=True,
                  suppress_health_check=list(HealthCheck))
        def check(case: Any) -> None:
            response = asyncio.run_coroutine_threadsafe(send(case), loop).result(REQUEST_TIMEOUT)
            case.validate_response(response, checks=CHECKS)

        check()

    def run() -> None:
        operations = [result.ok() for result in schema.get_all_operations()]
        # Deletions last, so the other operations still find the seeded objects; key revocations
        # after them, since one may revoke the very key the cases are sent with.
        def last(op: Any) -> tuple[bool, bool]:
            return op.path.endswith("/revoke"), op.method.upper() == "DELETE"

        for operation in sorted(operations, key=last):
            fuzz(operation)

    await asyncio.to_thread(run)

