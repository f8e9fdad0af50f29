"""The process's Prometheus series: every counter and histogram Clarion exports, in one place.

Counters are incremented where the event happens, after the transaction that made it
happen has committed (a rolled-back or retried transaction counts nothing, or once): the
dispatcher after recording a batch, the receipt sink and webhooks after ingesting, the
scheduler after releasing expired leases. The gauges that describe the database (queue depth,
campaigns by status, credits reserved) are read at scrape time by `operations.gauges` and
handed to `render`, so every process that is scraped answers them the same way.

Series live in prometheus_client's default registry, with its `process_*` and `python_*`
collectors; one process holds one set (tests running several apps in one process see the
counters add up, as a process restart would not).
"""

from __future__ import annotations

import collections
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from prometheus_client import REGISTRY, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector

CHANNELS = ("sms", "rcs", "whatsapp")
# The text format every Prometheus version reads (2.x does not know 1.0.0's media type).
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

messages_total = Counter(
    "clarion_messages_total",
    "Messages recorded after a provider hand-off, by the status written (sent, failed, "
    "queued for a retry, skipped).",
    ["channel", "provider", "status"],
)
provider_request_seconds = Histogram(
    "clarion_provider_request_seconds",
    "Duration of one provider submit call (one chunk of up to the provider's batch size).",
    ["provider", "outcome"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
leases_expired_total = Counter(
    "clarion_leases_expired_total",
    "Messages whose worker's lease ran out (the worker died or stalled): back to the queue.",
)
receipts_total = Counter(
    "clarion_receipts_total",
    "Delivery receipts ingested, by what they did: applied (moved a message), unchanged "
    "(duplicate or late), parked (no message recorded yet); unparked: parked receipts "
    "matched to their message later (a part of parked, not another receipt).",
    ["provider", "result"],
)
hook_deliveries_total = Counter(
    "clarion_hook_deliveries_total",
    "Event hook delivery attempts, by result: succeeded (a 2xx) or failed (retried later).",
    ["result"],
)
retention_deleted_total = Counter(
    "clarion_retention_deleted_total",
    "Rows deleted by retention (CLARION_RETENTION_DAYS), by table.",
    ["table"],
)


def provider_outcome(raised: bool, throttled: bool) -> str:
    """The `outcome` label of a provider call: error (it raised), throttled (the provider
    asked to slow down for at least one message) or ok."""
    if raised:
        return "error"
    return "throttled" if throttled else "ok"


def count_messages(rows: Iterable[tuple[str, str | None, str]]) -> None:
    """Count recorded messages, given as (channel, provider, status): one increment per
    series, not per message."""
    for (channel, provider, status), n in collections.Counter(rows).items():
        messages_total.labels(channel, provider or "none", status).inc(n)


def count_receipts(provider: str, applied: int, unchanged: int, parked: int) -> None:
    for result, n in (("applied", applied), ("unchanged", unchanged), ("parked", parked)):
        if n:
            receipts_total.labels(provider, result).inc(n)


@dataclass(slots=True)
class DatabaseGauges:
    """What the database says at scrape time (see `operations.gauges.read`)."""

    queue_depth: Mapping[str, int] = field(default_factory=dict)  # channel -> queued and due
    campaigns: Mapping[str, int] = field(default_factory=dict)  # status -> campaigns
    credits_reserved: float = 0.0


class _DatabaseCollector(Collector):
    """Yields the gauges last handed to `render` (set just before each exposition)."""

    def __init__(self) -> None:
        self.latest: DatabaseGauges | None = None

    def collect(self) -> Iterable[GaugeMetricFamily]:
        latest = self.latest
        if latest is None:
            return
        depth = GaugeMetricFamily(
            "clarion_queue_depth",
            "Queued messages already due (capped, see docs/integration.md), by channel.",
            labels=["channel"],
        )
        for channel in sorted({*CHANNELS, *latest.queue_depth}):
            depth.add_metric([channel], latest.queue_depth.get(channel, 0))
        yield depth
        campaigns = GaugeMetricFamily(
            "clarion_campaigns", "Campaigns by status.", labels=["status"]
        )
        for status, n in sorted(latest.campaigns.items()):
            campaigns.add_metric([status], n)
        yield campaigns
        yield GaugeMetricFamily(
            "clarion_credits_reserved",
            "Credits held in reserve for confirmed campaigns, over all accounts.",
            value=latest.credits_reserved,
        )


_database = _DatabaseCollector()
REGISTRY.register(_database)


def render(gauges: DatabaseGauges | None) -> bytes:
    """The exposition of this process's series, with the database gauges given."""
    _database.latest = gauges
    try:
        return generate_latest(REGISTRY)
    finally:
        _database.latest = None


def token_ok(configured: str | None, authorization: str | None) -> bool:
    """Whether an Authorization header carries `Bearer <configured>` (constant-time)."""
    if not configured or not authorization:
        return False
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), configured.encode())
