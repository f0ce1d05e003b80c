"""displayd's HTTP API as the benchmarks use it: timestamps, slogans, a campaign, /metrics.

    with admin_client(base, admin_key) as client:
        create_campaign(client, name="bench", starts_at=start, ends_at=start + timedelta(days=1),
                        dwell_seconds=5, targets={"all": True})
    values = read_metrics(base)               # {'displayd_pushes_total{outcome="delivered"}': 20.0, …}
    metric(values, "displayd_pushes_total")   # 20.0: every series of that name, summed
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from bench.harness.processes import BenchError


def iso(t: datetime) -> str:
    """The API's form of a time: UTC with a Z."""
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def read_metrics(base: str, *, timeout: float = 30.0) -> dict[str, float]:
    """`GET /metrics` (the Prometheus text format): each sample's value by its name with its labels."""
    response = httpx.get(f"{base}/metrics", timeout=timeout)
    response.raise_for_status()
    values: dict[str, float] = {}
    for line in response.text.splitlines():
        if line and not line.startswith("#"):
            series, _, value = line.rpartition(" ")
            values[series] = float(value)
    return values


def metric(values: dict[str, float], name: str) -> float | None:
    """The sum of every series of metric `name` in `values` (of read_metrics), or None when it has none."""
    found = [v for series, v in values.items() if series == name or series.startswith(name + "{")]
    return sum(found) if found else None


def admin_client(base: str, admin_key: str) -> httpx.Client:
    return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {admin_key}"}, timeout=60)


def approved_slogans(client: httpx.Client) -> list[int]:
    response = client.get("/api/v1/slogans", params={"status": "approved", "limit": 1000})
    response.raise_for_status()
    ids = [int(item["id"]) for item in response.json()["items"]]
    if not ids:
        raise BenchError("no approved slogans after the import")
    return ids


def create_campaign(client: httpx.Client, *, name: str, starts_at: datetime, ends_at: datetime, dwell_seconds: int,
                    targets: dict[str, Any]) -> dict[str, Any]:
    """A campaign of every approved slogan, weight 1 each; the API's answer."""
    response = client.post("/api/v1/campaigns", json={
        "name": name, "starts_at": iso(starts_at), "ends_at": iso(ends_at), "dwell_seconds": dwell_seconds,
        "playlist": [{"slogan_id": i, "weight": 1} for i in approved_slogans(client)], "targets": targets})
    if response.status_code != 201:
        raise BenchError(f"POST /api/v1/campaigns answered {response.status_code}: {response.text}")
    return response.json()  # type: ignore[no-any-return]
