"""Making slogans, campaigns and boards through the public API, for tests."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from displayd.auth.sessions import COOKIE
from displayd.runtime import runtime_of
from tests.conftest import Keys

SLOGANS = [
    "Nhiệt liệt chào mừng 70 năm Chiến thắng Điện Biên Phủ (07/5/1954 - 07/5/2024)!",
    "Chiến thắng Điện Biên Phủ - Lừng lẫy năm châu, chấn động địa cầu!",
    "Chín năm làm một Điện Biên - Nên vành hoa đỏ, nên thiên sử vàng!",
]


def lift_failure_limit(app: FastAPI) -> None:
    """For tests that present bad credentials many times on purpose: failures are still
    counted and logged, but the address is never held (answered 429)."""
    runtime_of(app).guard.holding = False
    runtime_of(app).guard.lift()


async def sign_in(client: httpx.AsyncClient, key: str) -> str:
    """Sign in to the dashboard with `key`; the session cookie's value. The client's cookie
    jar is left empty: the caller sends the cookie it means to."""
    response = await client.post("/ui/login", content=f"key={key}",
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 303, (response.status_code, response.text)
    value = response.cookies.get(COOKIE)
    client.cookies.clear()
    assert value
    return value


class Factory:
    def __init__(self, client: httpx.AsyncClient, keys: Keys) -> None:
        self.client = client
        self.keys = keys
        self._approved: list[int] = []

    async def _ok(self, method: str, url: str, who: str, body: Any = None) -> Any:
        response = await self.client.request(method, url, json=body, headers=self.keys.auth(who))
        assert response.status_code < 300, (method, url, response.status_code, response.text)
        return response.json() if response.content else None

    async def draft(self, text: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._ok("POST", "/api/v1/slogans", "editor2", {"text": text})
        return result

    async def approved(self, text: str) -> dict[str, Any]:
        slogan = await self.draft(text)
        return await self.approve(slogan)

    async def approve(self, slogan: dict[str, Any], who: str = "approver") -> dict[str, Any]:
        """Approve `slogan` as read (its `content_hash`), as `who`."""
        result: dict[str, Any] = await self._ok("POST", f"/api/v1/slogans/{slogan['id']}/approve", who,
                                                {"content_hash": slogan["content_hash"]})
        return result

    async def approved_ids(self) -> list[int]:
        """The three sample slogans, approved once per test."""
        if not self._approved:
            self._approved = [(await self.approved(text))["id"] for text in SLOGANS]
        return self._approved

    def campaign_body(self, name: str, playlist: list[int], **fields: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": name, "starts_at": "2024-05-01T00:00:00Z", "ends_at": "2024-06-01T00:00:00Z",
            "dwell_seconds": 30, "playlist": [{"slogan_id": s, "weight": 1} for s in playlist],
            "targets": {"all": True},
        }
        body.update(fields)
        return body

    async def campaign_body_at(self, name: str) -> tuple[str, dict[str, Any]]:
        return "/api/v1/campaigns", self.campaign_body(name, await self.approved_ids())

    async def campaign(self, name: str = "Đợt tuyên truyền", **fields: Any) -> dict[str, Any]:
        playlist = fields.pop("playlist_ids", None) or await self.approved_ids()
        result: dict[str, Any] = await self._ok("POST", "/api/v1/campaigns", "editor",
                                                self.campaign_body(name, playlist, **fields))
        return result

    async def board(self, board_id: str, **fields: Any) -> dict[str, Any]:
        body = {"id": board_id, "name": f"Bảng {board_id}", "delivery": "poll", **fields}
        result: dict[str, Any] = await self._ok("POST", "/api/v1/boards", "admin", body)
        return result

    async def key(self, role: str, name: str) -> dict[str, Any]:
        """A new staff key (through the admin API); `key` holds the key itself."""
        result: dict[str, Any] = await self._ok("POST", "/api/v1/keys", "admin", {"role": role, "name": name})
        return result

    async def current(self, board: dict[str, Any], **headers: str) -> httpx.Response:
        return await self.client.get(f"/api/v1/boards/{board['id']}/current",
                                     headers={"Authorization": f"Bearer {board['token']}", **headers})
