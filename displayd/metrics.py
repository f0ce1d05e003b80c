"""`/metrics`: what this process has done, in the Prometheus text format.

    metrics = Metrics()                      # one per process, on its Runtime
    metrics.polls += 1                       # the poll path: plain ints, no prometheus_client call
    metrics.pushed(delivered=True, seconds=0.012)
    registry = metrics_registry(runtime)     # a CollectorRegistry of its own, read at scrape time

The poll path is the hot path, so nothing there touches prometheus_client (whose counters
take a lock per increment): it bumps integers on `Metrics`, and `DisplaydCollector` turns
them into metric families only when Prometheus scrapes. Each app has its own
`CollectorRegistry` rather than the global one, so tests can build many apps in one process.

Metric names (all prefixed `displayd_`):

| name | type | labels |
|---|---|---|
| `displayd_pushes_total` | counter | `outcome` = delivered, failed |
| `displayd_push_latency_seconds` | histogram | |
| `displayd_polls_total` | counter | |
| `displayd_polls_not_modified_total` | counter | (answered 304) |
| `displayd_poll_not_modified_ratio` | gauge | (304s / polls since the process started) |
| `displayd_integrity_incidents_total` | counter | `source` = push, poll |
| `displayd_boards_unreachable` | gauge | (from the database, so every replica agrees) |
| `displayd_slot_lateness_seconds` | histogram | (how late each slot boundary job ran) |
| `displayd_scheduler_leader` | gauge | (1 in a process that leads push shards, 0 elsewhere) |
| `displayd_shards_led` | gauge | (push shards this process leads, of `displayd.delivery.shards.SHARDS`) |
| `displayd_replicas_live` | gauge | (replicas this process counts live, itself included; 0 where it may not lead) |
| `displayd_database_offline` | gauge | (1 while this process leads shards without the database, pushing from memory) |
| `displayd_plan_errors_total` | counter | (a campaign or board whose plan raised; see `plan_error` logs) |
| `displayd_auth_failures_total` | counter | `kind` = api_key, board_token, sign_in (see `auth_failure` logs) |
| `displayd_auth_refused_total` | counter | (answered 429 `too_many_failures`: the address was held) |
| `displayd_emergency_stop` | gauge | (1 while an emergency stop holds in this process's snapshot, else 0) |
| `displayd_streams_open` | gauge | (board event streams open in this process) |
| `displayd_streams_dropped_total` | counter | (streams closed: their board stopped reading; `stream_dropped` logs) |
| `displayd_rows_waiting` | gauge | (rotation-log writes the leader keeps while the database is unreachable) |
| `displayd_rows_dropped_total` | counter | (writes dropped: `outage_backlog_rows` were waiting; `backlog_full` logs) |
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request, Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy import func, select

if TYPE_CHECKING:
    from displayd.runtime import Runtime

__all__ = ["CONTENT_TYPE", "DisplaydCollector", "Histogram", "Metrics", "metrics_registry", "render"]

log = logging.getLogger("displayd.metrics")

# The classic text exposition format; every Prometheus version scrapes it.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Pushes go to boards on the office LAN: milliseconds normally, up to the 5 s attempt deadline.
PUSH_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
AUTH_KINDS = ("api_key", "board_token", "sign_in")
# A boundary job normally runs within milliseconds of its instant; seconds late is a problem.
SLOT_LATENESS_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Histogram:
    """Bucket counts and a sum, kept as plain numbers; `observe` is a bisect and two adds."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value

    def family(self, name: str, documentation: str) -> HistogramMetricFamily:
        cumulative: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            cumulative.append(("+Inf" if bound == float("inf") else repr(bound), running))
        return HistogramMetricFamily(name, documentation, buckets=cumulative, sum_value=self.sum)


class Metrics:
    """What this process counted since it started; read by `DisplaydCollector` at scrape time."""

    __slots__ = ("auth_failures", "auth_refused", "boards_unreachable", "incidents_push", "plan_errors", "polls",
                 "polls_not_modified", "push_latency", "pushes_delivered", "pushes_failed", "slot_lateness")

    def __init__(self) -> None:
        self.polls = 0
        self.polls_not_modified = 0
        self.pushes_delivered = 0
        self.pushes_failed = 0
        self.incidents_push = 0
        self.plan_errors = 0  # (campaign, board) pairs whose plan raised, once per snapshot each
        # Refused credentials by kind (`displayd.auth.guard.Kind`), and requests refused while held.
        self.auth_failures = dict.fromkeys(AUTH_KINDS, 0)
        self.auth_refused = 0
        self.boards_unreachable: int | None = None  # refreshed from the database before each scrape
        self.push_latency = Histogram(PUSH_LATENCY_BUCKETS)
        self.slot_lateness = Histogram(SLOT_LATENESS_BUCKETS)

    def pushed(self, *, delivered: bool, seconds: float | None) -> None:
        if delivered:
            self.pushes_delivered += 1
        else:
            self.pushes_failed += 1
        if seconds is not None:
            self.push_latency.observe(seconds)


class DisplaydCollector(Collector):
    """Metric families built from the runtime's metrics, poll recorder and scheduler when scraped."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def collect(self) -> Iterator[Metric]:
        metrics = self.runtime.metrics
        pushes = CounterMetricFamily("displayd_pushes", "Pushes to boards by outcome (one per board per push, "
                                     "after retries).", labels=["outcome"])
        pushes.add_metric(["delivered"], metrics.pushes_delivered)
        pushes.add_metric(["failed"], metrics.pushes_failed)
        yield pushes
        yield metrics.push_latency.family("displayd_push_latency_seconds",
                                          "Duration of the last attempt of each push.")
        yield CounterMetricFamily("displayd_polls", "Board polls answered (any status).", value=metrics.polls)
        yield CounterMetricFamily("displayd_polls_not_modified", "Board polls answered 304 Not Modified.",
                                  value=metrics.polls_not_modified)
        ratio = metrics.polls_not_modified / metrics.polls if metrics.polls else 0.0
        yield GaugeMetricFamily("displayd_poll_not_modified_ratio",
                                "Share of polls answered 304 since this process started.", value=ratio)
        incidents = CounterMetricFamily("displayd_integrity_incidents", "Boards found showing content displayd "
                                        "never issued to them.", labels=["source"])
        incidents.add_metric(["push"], metrics.incidents_push)
        incidents.add_metric(["poll"], self.runtime.polls.incidents)
        yield incidents
        if metrics.boards_unreachable is not None:
            yield GaugeMetricFamily("displayd_boards_unreachable", "Boards whose push circuit is open "
                                    "(5 failed slots in a row).", value=metrics.boards_unreachable)
        yield metrics.slot_lateness.family("displayd_slot_lateness_seconds",
                                           "How late each slot boundary job ran after its instant.")
        yield CounterMetricFamily("displayd_plan_errors", "Planning faults: a campaign or board whose plan "
                                  "raised and was left out (see the plan_error log events).",
                                  value=metrics.plan_errors)
        failures = CounterMetricFamily("displayd_auth_failures", "Refused credentials by kind: API keys, board "
                                       "tokens, dashboard sign-ins (see the auth_failure log events).",
                                       labels=["kind"])
        for kind, count in metrics.auth_failures.items():
            failures.add_metric([kind], count)
        yield failures
        yield CounterMetricFamily("displayd_auth_refused", "Sign-ins and staff keys answered 429: their address "
                                  "failed too often within a minute.", value=metrics.auth_refused)
        streams = self.runtime.streams
        yield GaugeMetricFamily("displayd_streams_open", "Board event streams open in this process.",
                                value=streams.count)
        yield CounterMetricFamily("displayd_streams_dropped", "Event streams closed because their board stopped "
                                  "reading (see the stream_dropped log events).", value=streams.dropped)
        scheduler = self.runtime.scheduler
        leader = 1 if scheduler is not None and scheduler.leader else 0
        yield GaugeMetricFamily("displayd_scheduler_leader", "1 if this process leads push shards (pushes).",
                                value=leader)
        leadership = None if scheduler is None else scheduler.leadership
        yield GaugeMetricFamily("displayd_shards_led", "Push shards this process leads (boards fall in 64).",
                                value=0 if leadership is None else len(leadership.held))
        yield GaugeMetricFamily("displayd_replicas_live", "Replicas this process counts live (fresh heartbeat), "
                                "itself included.", value=0 if leadership is None else leadership.live)
        yield GaugeMetricFamily("displayd_database_offline", "1 while this process leads shards without the "
                                "database, pushing from memory.",
                                value=1 if leadership is not None and leadership.offline else 0)
        backlog = None if scheduler is None else scheduler.dispatcher.backlog
        yield GaugeMetricFamily("displayd_rows_waiting", "Rotation-log writes (rows, outcomes, reports) kept in "
                                "memory until the unreachable database is back.",
                                value=0 if backlog is None else backlog.waiting)
        yield CounterMetricFamily("displayd_rows_dropped", "Rotation-log writes dropped because outage_backlog_rows "
                                  "were already waiting (see the backlog_full log event).",
                                  value=0 if backlog is None else backlog.dropped)
        yield GaugeMetricFamily("displayd_emergency_stop", "1 while an emergency stop holds (every board blank), "
                                "as this process's snapshot has it.",
                                value=0 if self.runtime.snapshot.stop is None else 1)


def metrics_registry(runtime: Runtime) -> CollectorRegistry:
    """A registry of this process's own (not prometheus_client's global one)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DisplaydCollector(runtime))
    return registry


async def refresh_unreachable(runtime: Runtime) -> None:
    """Count unreachable boards in the database: every replica reports the leader's view."""
    from displayd.db.models import Board, BoardHealth

    try:
        async with runtime.sessionmaker() as session:
            count = await session.scalar(
                select(func.count()).select_from(BoardHealth)
                .join(Board, Board.id == BoardHealth.board_id)
                .where(BoardHealth.unreachable_since.is_not(None), Board.deleted_at.is_(None)))
    except Exception as exc:  # a scrape must still answer when the database does not
        log.warning("could not count unreachable boards: %s", exc)
        return
    runtime.metrics.boards_unreachable = int(count or 0)


async def render(runtime: Runtime) -> bytes:
    """The text exposition of this process's metrics."""
    await refresh_unreachable(runtime)
    return generate_latest(runtime.registry)


router = APIRouter()


# Unauthenticated on purpose: Prometheus scrapes it from the internal network, and it says
# nothing about boards or slogans, only counts. Keep it off the public reverse proxy if the
# counts themselves matter (deploy/nginx.conf answers 404 for it).
@router.get("/metrics", tags=["health"], summary="Prometheus metrics (text format 0.0.4)",
            response_class=Response, responses={200: {"content": {CONTENT_TYPE: {}}}})
async def metrics_endpoint(request: Request) -> Response:
    from displayd.runtime import runtime_of  # the runtime imports this module for Metrics

    return Response(await render(runtime_of(request.app)), media_type=CONTENT_TYPE)
