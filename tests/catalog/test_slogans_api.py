"""The slogan catalog through the REST API, on SQLite and PostgreSQL."""

from __future__ import annotations

import unicodedata

import httpx

from displayd.config import Settings
from tests.conftest import Keys, count_rows

TEXT = "Chiến thắng Điện Biên Phủ - Lừng lẫy năm châu, chấn động địa cầu!"


async def create(
    client: httpx.AsyncClient, keys: Keys, text: str = TEXT, who: str = "editor", **extra: object
) -> httpx.Response:
    return await client.post("/api/v1/slogans", json={"text": text, **extra}, headers=keys.auth(who))


async def approve(
    client: httpx.AsyncClient, keys: Keys, slogan: dict[str, object], who: str = "approver", **extra: object
) -> httpx.Response:
    """Approve `slogan` as read: the body names the content_hash the approver reviewed."""
    return await client.post(f"/api/v1/slogans/{slogan['id']}/approve",
                             json={"content_hash": slogan["content_hash"], **extra}, headers=keys.auth(who))


async def test_create_returns_the_stored_form(client: httpx.AsyncClient, keys: Keys) -> None:
    raw = "  " + unicodedata.normalize("NFD", TEXT).replace(" ", "   ") + "\n"
    response = await create(client, keys, raw, number=2, source="101-HD/BTGTU mục IV", tags=["70-nam"])
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["text"] == TEXT and unicodedata.is_normalized("NFC", body["text"])
    assert body["status"] == "draft"
    assert body["number"] == 2 and body["source"] == "101-HD/BTGTU mục IV" and body["tags"] == ["70-nam"]
    assert body["created_by"] == "Chuyên viên A"
    assert body["content_hash"].startswith("sha256:") and len(body["content_hash"]) == 71
    assert body["approved_by"] is None and body["retired_at"] is None and body["retire_reason"] is None
    assert body["created_at"].endswith("Z")
    fetched = await client.get(f"/api/v1/slogans/{body['id']}", headers=keys.auth("operator"))
    assert fetched.json() == body


async def test_duplicate_normalised_text_is_409(client: httpx.AsyncClient, keys: Keys, settings: Settings) -> None:
    assert (await create(client, keys)).status_code == 201
    again = await create(client, keys, unicodedata.normalize("NFD", TEXT).replace(" ", "  "), who="editor2")
    assert again.status_code == 409
    assert again.json()["error"] == "conflict"
    assert await count_rows(settings, "slogan") == 1


async def test_bad_text_is_422_and_nothing_is_stored(client: httpx.AsyncClient, keys: Keys, settings: Settings) -> None:
    audit_before = await count_rows(settings, "audit_event")
    for bad in ["", "  ", "x" * 281, "a\x07b", "a\u200bb", "a\u202eb"]:
        response = await create(client, keys, bad)
        assert response.status_code == 422, bad
        assert set(response.json()) == {"error", "detail"}
    for body in [{}, {"text": 5}, {"text": TEXT, "unknown": 1}, {"text": TEXT, "tags": "x"},
                 {"text": TEXT, "number": -1}]:
        response = await client.post("/api/v1/slogans", json=body, headers=keys.auth("editor"))
        assert response.status_code == 422, body
    assert await count_rows(settings, "slogan") == 0
    assert await count_rows(settings, "audit_event") == audit_before


async def test_patch_only_while_draft(client: httpx.AsyncClient, keys: Keys) -> None:
    slogan = (await create(client, keys)).json()
    patched = await client.patch(f"/api/v1/slogans/{slogan['id']}", json={"text": TEXT + "  ", "tags": ["a", "a", "b"]},
                                 headers=keys.auth("editor2"))
    assert patched.status_code == 200
    assert patched.json()["tags"] == ["a", "b"]
    edited = await client.patch(f"/api/v1/slogans/{slogan['id']}", json={"text": "Chín năm làm một Điện Biên"},
                                headers=keys.auth("editor"))
    assert edited.json()["text"] == "Chín năm làm một Điện Biên"
    assert edited.json()["content_hash"] != slogan["content_hash"]
    approved = await approve(client, keys, edited.json())
    assert approved.status_code == 200, approved.text
    refused = await client.patch(f"/api/v1/slogans/{slogan['id']}", json={"text": "khác"}, headers=keys.auth("editor"))
    assert refused.status_code == 409
    unchanged = await client.get(f"/api/v1/slogans/{slogan['id']}", headers=keys.auth("editor"))
    assert unchanged.json()["text"] == "Chín năm làm một Điện Biên"


async def test_patch_to_an_existing_text_is_409(client: httpx.AsyncClient, keys: Keys) -> None:
    await create(client, keys)
    other = (await create(client, keys, "Chín năm làm một Điện Biên")).json()
    response = await client.patch(f"/api/v1/slogans/{other['id']}", json={"text": TEXT}, headers=keys.auth("editor"))
    assert response.status_code == 409


async def test_four_eyes(client: httpx.AsyncClient, keys: Keys) -> None:
    # The admin may approve, but not a slogan the admin wrote.
    own = (await create(client, keys, who="admin")).json()
    assert own["edited_by"] == ["Quản trị"]
    refused = await approve(client, keys, own, who="admin")
    assert refused.status_code == 403
    assert refused.json()["error"] == "forbidden"
    assert "four-eyes" in refused.json()["detail"]
    not_role = await approve(client, keys, own, who="editor")
    assert not_role.status_code == 403
    state = await client.get(f"/api/v1/slogans/{own['id']}", headers=keys.auth("admin"))
    assert state.json()["status"] == "draft"
    ok = await approve(client, keys, own, reference="QĐ 12/2024")
    assert ok.status_code == 200
    assert ok.json()["status"] == "approved" and ok.json()["approved_by"] == "Lãnh đạo Sở"
    assert ok.json()["approval_reference"] == "QĐ 12/2024"
    twice = await approve(client, keys, own, who="approver2")
    assert twice.status_code == 409


async def test_an_editor_of_any_revision_may_not_approve(client: httpx.AsyncClient, keys: Keys) -> None:
    """The walk-around the issue names: an admin edits someone else's draft, then approves it."""
    draft = (await create(client, keys)).json()  # by Chuyên viên A (editor)
    edited = await client.patch(f"/api/v1/slogans/{draft['id']}", json={"text": TEXT + " Muôn năm!"},
                                headers=keys.auth("admin"))
    assert edited.status_code == 200
    assert edited.json()["edited_by"] == ["Chuyên viên A", "Quản trị"]
    # The editor's hand stays on the draft even after someone else rewrites it back.
    back = await client.patch(f"/api/v1/slogans/{draft['id']}", json={"text": TEXT}, headers=keys.auth("editor2"))
    assert back.json()["edited_by"] == ["Chuyên viên A", "Quản trị", "Chuyên viên B"]
    refused = await approve(client, keys, back.json(), who="admin")
    assert refused.status_code == 403 and "four-eyes" in refused.json()["detail"]
    assert (await approve(client, keys, back.json())).status_code == 200
    events = (await client.get("/api/v1/audit", params={"entity_type": "slogan", "entity_id": str(draft["id"])},
                               headers=keys.auth("admin"))).json()["items"]
    assert events[0]["action"] == "slogan.approve"
    assert events[0]["after"]["edited_by"] == ["Chuyên viên A", "Quản trị", "Chuyên viên B"]


async def test_an_edit_that_leaves_the_text_is_not_writing_it(client: httpx.AsyncClient, keys: Keys) -> None:
    draft = (await create(client, keys)).json()
    tags = await client.patch(f"/api/v1/slogans/{draft['id']}", json={"tags": ["x"], "text": " " + TEXT},
                              headers=keys.auth("admin"))
    assert tags.status_code == 200 and tags.json()["edited_by"] == ["Chuyên viên A"]
    ok = await approve(client, keys, tags.json(), who="admin")  # an admin who wrote nothing may approve
    assert ok.status_code == 200 and ok.json()["approved_by"] == "Quản trị"


async def test_approve_names_the_reviewed_content_hash(client: httpx.AsyncClient, keys: Keys) -> None:
    draft = (await create(client, keys)).json()
    url = f"/api/v1/slogans/{draft['id']}/approve"
    for body in (None, {}, {"reference": "QĐ 1"}, {"content_hash": "abc"},
                 {"content_hash": draft["content_hash"].upper()}):
        missing = await client.post(url, json=body, headers=keys.auth("approver"))
        assert missing.status_code == 422, (body, missing.text)
        assert set(missing.json()) == {"error", "detail"}
    # The editor changes the text while the approver is reading the first version.
    changed = await client.patch(f"/api/v1/slogans/{draft['id']}", json={"text": "Chín năm làm một Điện Biên"},
                                 headers=keys.auth("editor"))
    assert changed.status_code == 200
    stale = await approve(client, keys, draft)
    assert stale.status_code == 409
    assert stale.json()["error"] == "content_changed"
    assert changed.json()["content_hash"] in stale.json()["detail"]
    still = (await client.get(f"/api/v1/slogans/{draft['id']}", headers=keys.auth("approver"))).json()
    assert still["status"] == "draft" and still["approved_by"] is None
    ok = await approve(client, keys, changed.json())
    assert ok.status_code == 200 and ok.json()["text"] == "Chín năm làm một Điện Biên"


async def test_retire_needs_a_reason_and_happens_once(client: httpx.AsyncClient, keys: Keys) -> None:
    slogan = (await create(client, keys)).json()
    assert (await approve(client, keys, slogan)).status_code == 200
    no_reason = await client.post(f"/api/v1/slogans/{slogan['id']}/retire", json={}, headers=keys.auth("approver"))
    assert no_reason.status_code == 422
    empty = await client.post(f"/api/v1/slogans/{slogan['id']}/retire", json={"reason": "   "},
                              headers=keys.auth("approver"))
    assert empty.status_code == 422
    by_editor = await client.post(f"/api/v1/slogans/{slogan['id']}/retire", json={"reason": "sai"},
                                  headers=keys.auth("editor"))
    assert by_editor.status_code == 403
    retired = await client.post(f"/api/v1/slogans/{slogan['id']}/retire", json={"reason": "Hết đợt tuyên truyền"},
                                headers=keys.auth("approver"))
    assert retired.status_code == 200
    body = retired.json()
    assert body["status"] == "retired" and body["retire_reason"] == "Hết đợt tuyên truyền" and body["retired_at"]
    again = await client.post(f"/api/v1/slogans/{slogan['id']}/retire", json={"reason": "x"},
                              headers=keys.auth("approver"))
    assert again.status_code == 409


async def test_list_filters_and_pages(client: httpx.AsyncClient, keys: Keys) -> None:
    ids = []
    for n in range(7):
        ids.append((await create(client, keys, f"Khẩu hiệu số {n} Điện Biên")).json()["id"])
    first = (await client.get(f"/api/v1/slogans/{ids[0]}", headers=keys.auth("approver"))).json()
    assert (await approve(client, keys, first)).status_code == 200
    approved = await client.get("/api/v1/slogans", params={"status": "approved"}, headers=keys.auth("operator"))
    assert [s["id"] for s in approved.json()["items"]] == [ids[0]]
    found = await client.get("/api/v1/slogans", params={"q": "SỐ 3"}, headers=keys.auth("operator"))
    assert [s["id"] for s in found.json()["items"]] == [ids[3]]
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, object] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/api/v1/slogans", params=params, headers=keys.auth("operator"))).json()
        seen += [s["id"] for s in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids
    bad = await client.get("/api/v1/slogans", params={"cursor": "not-a-cursor"}, headers=keys.auth("operator"))
    assert bad.status_code == 422
    too_many = await client.get("/api/v1/slogans", params={"limit": 1001}, headers=keys.auth("operator"))
    assert too_many.status_code == 422


async def test_missing_slogan_is_404(client: httpx.AsyncClient, keys: Keys) -> None:
    response = await client.get("/api/v1/slogans/999999", headers=keys.auth("operator"))
    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "detail": "slogan 999999 does not exist"}


async def test_every_change_is_audited(client: httpx.AsyncClient, keys: Keys) -> None:
    slogan = (await create(client, keys)).json()
    await client.patch(f"/api/v1/slogans/{slogan['id']}", json={"tags": ["x"]}, headers=keys.auth("editor"))
    assert (await approve(client, keys, slogan)).status_code == 200
    await client.post(f"/api/v1/slogans/{slogan['id']}/retire", json={"reason": "thôi"}, headers=keys.auth("approver"))
    events = (await client.get("/api/v1/audit", params={"entity_type": "slogan"}, headers=keys.auth("admin"))).json()
    actions = [(e["action"], e["actor"]) for e in reversed(events["items"])]
    assert actions == [("slogan.create", "Chuyên viên A"), ("slogan.update", "Chuyên viên A"),
                       ("slogan.approve", "Lãnh đạo Sở"), ("slogan.retire", "Lãnh đạo Sở")]
    update = events["items"][2]
    assert update["before"]["tags"] == [] and update["after"]["tags"] == ["x"]
    retire = events["items"][0]
    assert retire["before"]["status"] == "approved" and retire["after"]["status"] == "retired"
    for role in ("editor", "approver", "operator"):
        assert (await client.get("/api/v1/audit", headers=keys.auth(role))).status_code == 403
