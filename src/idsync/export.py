"""Metrics of one-shot runs, for Prometheus: a textfile (node_exporter) or a Pushgateway.

The same names as `idsync watch` serves (see metrics.py), plus `idsync_last_run_*` gauges that
describe the newest run, which is what an alert on a scheduled job wants to see.
"""

from __future__ import annotations

import http.client
import logging
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from prometheus_client import Gauge, push_to_gateway, write_to_textfile
from prometheus_client.exposition import basic_auth_handler, default_handler

from idsync.envelope import SUCCESS, Status
from idsync.metrics import Metrics

log = logging.getLogger(__name__)

Headers = list[tuple[str, str]]

STATUSES = tuple(str(status) for status in Status)


def run_metrics(
    report: Mapping[str, Any], command: str = "run", last_success: float | None = None
) -> Metrics:
    """A registry describing one run or check (``report`` is a report's ``to_dict()``)."""
    job = str(report["job"])
    metrics = Metrics(job)
    metrics.set_mode("stopped")  # a one-shot run follows nothing once it has ended
    metrics.seen.inc(int(report.get("source_ids") or 0))
    metrics.inserted.inc(int(report.get("inserted") or 0))
    metrics.rejected.inc(int(report.get("rejected") or 0))
    if not report.get("dry_run"):
        metrics.deleted.inc(int(report.get("deleted") or 0))
        metrics.restored.inc(int(report.get("restored") or 0))
    metrics.batches.inc(int(report.get("batches") or 0))
    finished = time.time()
    metrics.healthy.set(1.0 if report["status"] in SUCCESS else 0.0)  # this run's outcome
    if report["status"] in SUCCESS and not report.get("dry_run"):
        metrics.full_passes.inc()
        last_success = finished
    if report.get("dry_run"):
        metrics.no_success_claim()
    elif last_success is not None:
        metrics.last_success.set(last_success)
    _last_run(metrics, report, command == "check")
    return metrics


def _last_run(metrics: Metrics, report: Mapping[str, Any], drift: bool) -> None:
    reg, job = metrics.registry, str(report["job"])

    def gauge(name: str, text: str, value: float) -> None:
        Gauge(name, text, ["idsync_job"], registry=reg).labels(job).set(value)

    started = datetime.fromisoformat(str(report["started_at"])).timestamp()
    gauge("idsync_last_run_timestamp_seconds", "When the newest run started.", started)
    gauge("idsync_last_run_duration_seconds", "How long it took.", float(report["duration_s"]))
    gauge("idsync_last_run_exit_code", "Its exit code (0 ok, 4 rejected or drift).",
          float(report.get("exit_code") or 0))  # fmt: skip
    status = Gauge("idsync_last_run_status", "1 for the newest run's status, 0 for the others.",
                   ["idsync_job", "status"], registry=reg)  # fmt: skip
    for name in STATUSES:
        status.labels(job, name).set(1.0 if report["status"] == name else 0.0)
    gauge("idsync_last_run_rejected_ids", "Ids the newest run rejected.",
          float(report.get("rejected") or 0))  # fmt: skip
    if report.get("mirror"):
        gauge(
            "idsync_last_run_kept_referenced_ids",
            "Orphans the newest run kept: a foreign key refused their delete.",
            float(report.get("kept_referenced") or 0),
        )
        gauge("idsync_last_run_delete_refused_ids", "Orphans a guard refused to delete.",
              float(report.get("delete_refused") or 0))  # fmt: skip
    phase = Gauge("idsync_last_run_phase_seconds", "Seconds the newest run spent in each phase.",
                  ["idsync_job", "phase"], registry=reg)  # fmt: skip
    for name, seconds in (report.get("phases") or {}).items():
        phase.labels(job, name.removesuffix("_s")).set(float(seconds))
    if drift:
        ids = Gauge("idsync_drift_ids", "Ids found out of sync by the newest check.",
                    ["idsync_job", "kind"], registry=reg)  # fmt: skip
        for kind in ("missing", "orphans"):
            ids.labels(job, kind).set(float(report.get(kind) or 0))


def publish(
    report: Mapping[str, Any],
    command: str,
    metrics_file: str | None,
    pushgateway: str | None,
    last_success: float | None = None,
) -> list[str]:
    """Write and/or push the run's metrics; return warnings instead of failing the run."""
    if not metrics_file and not pushgateway:
        return []
    metrics = run_metrics(report, command, last_success)
    problems = []
    if metrics_file:
        try:  # a temporary file renamed over the old one: a scrape never sees half a file
            write_to_textfile(metrics_file, metrics.registry)
        except OSError as exc:
            problems.append(f"metrics file {metrics_file} not written: {exc}")
    if pushgateway:
        group = "dry-run" if report.get("dry_run") else command
        problem = _push(pushgateway, {"idsync_job": str(report["job"]), "command": group}, metrics)
        problems += [problem] if problem else []
    for problem in problems:
        log.warning("[%s] %s", report["job"], problem)
    return problems


def _gateway_address(url: str) -> str | None:
    """``scheme://host:port`` of a usable gateway URL, never its userinfo; None if unusable."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")


def _push(url: str, group: dict[str, str], metrics: Metrics) -> str | None:
    """Push to ``group`` (a PUT replaces the group's every series: one group per job and
    command, so that a check does not wipe a run's figures); a problem is a warning returned,
    never an exception: the run has ended already."""
    address = _gateway_address(url)
    if address is None:  # its text may hold a password: never repeat it
        return "metrics not pushed: --pushgateway is not a usable URL (http://HOST:PORT)"
    parts = urlsplit(url)
    user, password = parts.username, parts.password
    # urllib takes no user in a URL's address: send it as basic authentication instead.
    bare = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))

    def with_auth(url: str, method: str, timeout: float | None, headers: Headers,
                  data: bytes) -> Callable[[], None]:  # fmt: skip
        if user is None:
            return default_handler(url, method, timeout, headers, data)
        return basic_auth_handler(
            url, method, timeout, headers, data, unquote(user), unquote(password or "")
        )

    try:
        push_to_gateway(
            bare, job="idsync", registry=metrics.registry, grouping_key=group, timeout=10,
            handler=with_auth,
        )  # fmt: skip
    except (OSError, ValueError, http.client.HTTPException) as exc:
        reason = str(exc) if isinstance(exc, OSError) else type(exc).__name__
        return f"metrics not pushed to {address}: {reason}"
    return None
