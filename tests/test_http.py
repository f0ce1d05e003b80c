"""Error shape, body limit, invalid JSON, health, OpenAPI."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from displayd.config import Settings
from displayd.runtime import runtime_of
from tests.conftest import Keys, count_rows


async def test_body_over_64_kib_is_413_and_nothing_is_written(client: httpx.AsyncClient, keys: Keys,
                                                              settings: Settings) -> None:
    huge = '{"text": "' + "a" * (64 * 1024) + '"}'
    response = await client.post("/api/v1/slogans", content=huge, headers={
        **keys.auth("editor"), "content-type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"

    async def chunks():  # no Content-Length: the limit counts the stream
        for _ in range(70):
            yield b"a" * 1024

    streamed = await client.post("/api/v1/slogans", content=chunks(), headers={
        **keys.auth("editor"), "content-type": "application/json"})
    assert streamed.status_code == 413
    assert await count_rows(settings, "slogan") == 0


async def test_invalid_json_is_422(client: httpx.AsyncClient, keys: Keys, settings: Settings) -> None:
    response = await client.post("/api/v1/slogans", content=b'{"text": "a",', headers={
        **keys.auth("editor"), "content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_json"
    assert await count_rows(settings, "slogan") == 0


async def test_unknown_route_is_json_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert set(response.json()) == {"error", "detail"}


async def test_health(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {"status": "ready"}


async def test_readyz_is_503_when_the_database_is_gone(app: FastAPI, client: httpx.AsyncClient) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    real = runtime_of(app).engine
    runtime_of(app).engine = create_async_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    try:
        response = await client.get("/readyz")
    finally:
        await runtime_of(app).engine.dispose()
        runtime_of(app).engine = real
    assert response.status_code == 503
    assert response.json()["error"] == "unavailable"


async def test_openapi_names_and_describes_every_schema(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    components = schema["components"]["schemas"]
    assert "HTTPValidationError" not in components
    for name, component in components.items():
        assert component.get("description"), f"schema {name} has no description"
        for field, prop in component.get("properties", {}).items():
            assert prop.get("description"), f"{name}.{field} has no description"
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert operation.get("summary"), f"{method} {path} has no summary"
    docs = await client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
