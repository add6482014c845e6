"""Prometheus metrics of one application, summed over all workers of `bazaar serve --workers N`."""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, values
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
# The route label of a request that matched no route: a fixed value, so that probing
# random paths cannot create new time series.
UNMATCHED = "unmatched"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# From well under a millisecond (a cached read) to the 10 s a request should never take.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def shared_between_processes() -> bool:
    """Whether metric values live in files that every worker writes to."""
    # prometheus-client picks its value store once, when first imported, from the
    # environment: ask it rather than the environment, which may have changed since.
    return values.ValueClass is not values.MutexValue


class Metrics:
    """The request, pool and worker metrics that `/metrics` reports."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "bazaar_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "bazaar_http_request_duration_seconds",
            "Time from receiving an HTTP request to sending the end of its response.",
            ["route", "method", "status"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.in_progress = Gauge(
            "bazaar_http_requests_in_progress",
            "HTTP requests being served right now (this scrape included).",
            multiprocess_mode="livesum",
            registry=self.registry,
        )
        self.pool_checked_out = Gauge(
            "bazaar_db_pool_checked_out_connections",
            "Database connections checked out of the pool.",
            multiprocess_mode="livesum",
            registry=self.registry,
        )
        self.workers = Gauge(
            "bazaar_workers",
            "Worker processes serving requests.",
            multiprocess_mode="livesum",
            registry=self.registry,
        )
        self.mails_pending = Gauge(
            "bazaar_mails_pending",
            "Mails in the outbox waiting to be sent (as last counted by a sender).",
            multiprocess_mode="livemostrecent",
            registry=self.registry,
        )
        self.mails_sent = Counter(
            "bazaar_mails_sent",
            "Mails the SMTP server accepted (or, without one, written to the log).",
            registry=self.registry,
        )
        self.mails_failed = Counter(
            "bazaar_mails_failed",
            "Mails given up on after a day of retries.",
            registry=self.registry,
        )
        self.mail_retries = Counter(
            "bazaar_mail_retries",
            "Attempts to send a mail that failed and were put off for a retry.",
            registry=self.registry,
        )
        self.db_reads = Counter(
            "bazaar_db_reads",
            "Reads that may lag, by the database role that served them (with a replica only).",
            ["role"],
            registry=self.registry,
        )
        # Looking a labelled child up takes a lock and a few allocations; this plain
        # dict keeps that off the hot path after the first request of each kind.
        self._series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request and its duration."""
        key = (route, method if method in METHODS else "other", status)
        series = self._series.get(key)
        if series is None:
            labels = (key[0], key[1], str(status))
            series = (self.requests.labels(*labels), self.duration.labels(*labels))
            self._series[key] = series
        series[0].inc()
        series[1].observe(seconds)

    def watch_pool(self, engine: AsyncEngine) -> None:
        """Keep the checked-out gauge in step with the engine's pool."""
        pool = engine.sync_engine.pool
        checked_out = getattr(pool, "checkedout", None)
        if checked_out is None:  # a pool that does not count (SQLite in memory)
            return
        gauge = self.pool_checked_out

        # Set from the pool's own count rather than adding and subtracting, so that a
        # connection returned without a checkin event (cancelled mid-checkin) does not
        # skew the gauge for good: the next event puts it right.
        @event.listens_for(pool, "checkout")
        def _checkout(*_args: Any) -> None:
            gauge.set(checked_out())

        @event.listens_for(pool, "checkin")
        def _checkin(*_args: Any) -> None:
            # Called before the connection is back in the pool, which still counts it.
            gauge.set(max(checked_out() - 1, 0))

    def worker_started(self) -> None:
        self.workers.set(1)

    def worker_stopped(self) -> None:
        self.workers.set(0)
        self.in_progress.set(0)
        self.pool_checked_out.set(0)
        if shared_between_processes():
            # A worker's live gauges must stop counting once it is gone.
            mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]

    def exposition(self) -> bytes:
        """All metrics in Prometheus text format, summed over the workers when there are several."""
        if not shared_between_processes():
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
