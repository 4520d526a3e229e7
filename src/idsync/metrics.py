"""Prometheus metrics of a job, in a registry of their own (never the process-wide default).

The names suit a one-shot `idsync run` as well as the `watch` daemon; every series is labelled
with the job (`idsync_job`), so one registry can carry several jobs.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Enum, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

MODES = ("starting", "change-stream", "polling", "stopped")
"""States of ``idsync_mode``: how new ids are being found."""

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    """The figures one job reports; thread-safe (the HTTP thread reads while the job writes)."""

    def __init__(self, job: str, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        # Not `job`: Prometheus gives every scraped target (and the Pushgateway its group) a
        # `job` label of its own, which would rename ours `exported_job`.
        reg, labels = self.registry, ["idsync_job"]

        def counter(name: str, text: str) -> Counter:
            return Counter(name, text, labels, registry=reg).labels(job)

        def gauge(name: str, text: str) -> Gauge:
            return Gauge(name, text, labels, registry=reg).labels(job)

        self.seen = counter("idsync_ids_seen", "Ids read from the source.")
        self.inserted = counter("idsync_ids_inserted", "Rows added to the target.")
        self.rejected = counter("idsync_ids_rejected", "Ids that cannot be stored exactly.")
        self.deleted = counter(
            "idsync_ids_deleted", "Rows of orphans deleted, or marked (mirror mode)."
        )
        self.restored = counter(
            "idsync_ids_restored", "Rows marked as orphans' whose ids came back (soft delete)."
        )
        self.batches = counter("idsync_batches", "Committed insert transactions.")
        self.full_passes = counter("idsync_full_passes", "Full passes (as `idsync run`) finished.")
        self.gap_passes = counter("idsync_gap_passes", "Passes over the ids since a checkpoint.")
        self.reconnects = counter("idsync_reconnects", "Failures followed by a reconnection.")
        self.streams_lost = counter(
            "idsync_change_streams_lost", "Change streams whose position could not be resumed."
        )
        self.lag = gauge(
            "idsync_lag_seconds",
            "Age of the oldest change in the last committed batch (MongoDB's clocks count"
            " whole seconds: up to 1 s high); 0 once caught up.",
        )
        self._last_success = Gauge(
            "idsync_last_success_timestamp_seconds",
            "Unix time when the target was last known to hold every id seen so far.",
            labels,
            registry=reg,
        )
        self.last_success = self._last_success.labels(job)
        self._job = job
        self.healthy = gauge(
            "idsync_healthy", "1 while the watcher makes progress (what /healthz says), else 0."
        )
        self._mode = Enum(
            "idsync_mode", "How new ids are found.", labels, states=list(MODES), registry=reg
        ).labels(job)

    def no_success_claim(self) -> None:
        """Export no last-success time at all (a dry run knows none: 0 would say "never")."""
        self._last_success.remove(self._job)

    def set_mode(self, mode: str) -> None:
        self._mode.state(mode)

    def caught_up(self, lag_s: float = 0.0) -> None:
        """The target holds everything seen so far; the last change took ``lag_s`` to land."""
        self.lag.set(max(lag_s, 0.0))
        self.last_success.set(time.time())

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric in the registry."""
        return generate_latest(self.registry)
