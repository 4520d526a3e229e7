"""A batch committed whose reply never came back: the next pass finds its ids stored and takes
them for the run's, never inserts them again (a column without a UNIQUE index would keep both).

A reset link loses that reply only now and then (test_network_faults.py meets it by chance);
here the batch's real insert commits and the error the lost reply would raise follows it."""

from __future__ import annotations

from typing import Any

import pytest
from bson import ObjectId

from idsync import Job, sync
from idsync.config import RunOptions
from idsync.errors import TransientError
from idsync.targets import open_target
from tests.conftest import BOTH_TARGETS, Env

pytestmark = pytest.mark.fault


class _Listed:
    def __init__(self) -> None:
        self.ids: list[str] = []

    def begin(self) -> None:
        pass

    def add(self, texts: list[str]) -> None:
        self.ids += texts


@BOTH_TARGETS
def test_a_lost_commit_reply_is_settled_not_resent(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    env.sql("CREATE TABLE cm_cluster_id (cluster_id varchar(64) NOT NULL)")
    ids = [ObjectId() for _ in range(3000)]
    env.add_source(ids)
    target_class = type(open_target(env.settings(), Job()))
    real = target_class.insert_batch
    lost: list[int] = []

    def committed_then_reply_lost(self: Any, texts: Any, checkpoint: Any = None) -> Any:
        result = real(self, texts, checkpoint)
        if not lost:
            lost.append(len(texts))
            raise TransientError("the server's reply to COMMIT was lost (the link reset)")
        return result

    monkeypatch.setattr(target_class, "insert_batch", committed_then_reply_lost)
    listed = _Listed()
    report = sync(Job(batch_size=1000), env.settings(retries=2, retry_backoff_s=0.0),
                  RunOptions(log_ids=False), missing=listed)  # fmt: skip
    rows = env.target_ids()
    assert lost and report.retried and report.status == "ok"
    assert len(rows) == len(set(rows)) == 3000  # nothing twice
    assert report.inserted == 3000 and sorted(listed.ids) == rows
