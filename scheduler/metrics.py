"""Prometheus metrics for the delivery engine, on a registry of their own (nothing global at import).

`create_metrics()` builds one `DeliveryMetrics`; the sender and the planner update it, and
`start_metrics_server` serves its registry over HTTP for scraping.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

LATENESS_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 24 * 3600)
"""Seconds from a release's slot to its first part reaching the platform."""

SEND_OUTCOMES = (
    "sent",
    "retry_after",
    "transient",
    "ambiguous",
    "failed",
    "unreachable",
    "cancelled",
    "migrated",
    "released",
    "lease_lost",
)


@dataclass(frozen=True)
class DeliveryMetrics:
    registry: CollectorRegistry
    queue_depth: Gauge
    """Pending deliveries in the outbox (refreshed by the sender every few seconds)."""
    releases: Counter
    """Lessons released into the outbox by the planner."""
    sends: Counter
    """Deliveries finished or retried, by platform and outcome (see `SEND_OUTCOMES`)."""
    parts_sent: Counter
    """Messages the platform accepted, by platform."""
    rate_limited: Counter
    """429 answers (retry_after) by platform: the pacer should keep this at zero."""
    lateness: Histogram
    """sent_at - due_at in seconds, by platform."""

    def observe_send(self, platform: str, outcome: str) -> None:
        self.sends.labels(platform=platform, outcome=outcome).inc()


def create_metrics(registry: CollectorRegistry | None = None) -> DeliveryMetrics:
    """Fresh metrics on `registry` (a new private one by default)."""
    registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
    return DeliveryMetrics(
        registry=registry,
        queue_depth=Gauge("dripcourse_queue_depth", "Pending deliveries in the outbox", registry=registry),
        releases=Counter("dripcourse_releases", "Lessons released into the outbox", registry=registry),
        sends=Counter(
            "dripcourse_sends",
            "Delivery attempts by platform and outcome",
            ["platform", "outcome"],
            registry=registry,
        ),
        parts_sent=Counter(
            "dripcourse_messages_sent", "Messages accepted by the platform", ["platform"], registry=registry
        ),
        rate_limited=Counter(
            "dripcourse_rate_limited",
            "Rate-limit answers (HTTP 429) by platform",
            ["platform"],
            registry=registry,
        ),
        lateness=Histogram(
            "dripcourse_lateness_seconds",
            "Seconds from a lesson's slot to its delivery",
            ["platform"],
            buckets=LATENESS_BUCKETS,
            registry=registry,
        ),
    )


@dataclass(frozen=True)
class MetricsServer:
    server: WSGIServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def start_metrics_server(host: str, port: int, registry: CollectorRegistry) -> MetricsServer:
    """Serve `registry` at http://host:port/metrics from a daemon thread; port 0 picks a free one."""
    server, thread = start_http_server(port, addr=host, registry=registry)
    return MetricsServer(server, thread)
