"""Every report prints every figure it has, in its stated order, and ends only once it finished."""

from __future__ import annotations

from dataclasses import fields

import pytest

from idsync.check.report import CheckReport
from idsync.envelope import BaseReport, Status
from idsync.errors import GuardError, TransientError
from idsync.run.report import SyncReport


@pytest.mark.parametrize("kind", [SyncReport, CheckReport])
def test_the_json_keys_are_every_field_once(kind: type[BaseReport]) -> None:
    names = [f.name for f in fields(kind) if f.name != "_clock"]
    assert sorted(kind.KEYS) == sorted(names)
    assert list(kind(job="j").to_dict()) == list(kind.KEYS)


def test_a_failed_report_is_never_ok_and_a_refusal_is_refused() -> None:
    run = SyncReport(job="j")
    run.fail(GuardError("too many"))
    run.finish()
    assert (run.status, run.exit_code) == (Status.REFUSED, 3)
    check = CheckReport(job="j")
    check.fail(TransientError("away"))
    check.finish()
    assert (check.status, check.exit_code) == (Status.FAILED, 1)


def test_outcomes_of_finished_reports() -> None:
    run, check = SyncReport(job="j"), CheckReport(job="j")
    run.reject("x", "why")
    check.duplicate_rows = 1
    run.finish()
    check.finish()
    assert (run.status, run.exit_code) == (Status.PARTIAL, 4)
    assert (check.status, check.exit_code) == (Status.DRIFT, 4)


def test_a_checks_text_gives_each_sides_reason_in_one_clause() -> None:
    from idsync.check.checker import SOURCE_REASON
    from idsync.check.report import Method, SideMethod

    check = CheckReport(job="j")
    check.method["source"] = SideMethod(Method.EXACT, SOURCE_REASON)
    text = check.to_text()
    assert "exact (MongoDB's aggregation has no hash function…)" in text
    assert SOURCE_REASON not in text and SOURCE_REASON in check.to_json()
