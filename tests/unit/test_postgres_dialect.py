"""PostgreSQL's SQL text, checked without a server."""

from __future__ import annotations

from idsync.postgres import dialect
from idsync.runs import FIELDS


def test_names_are_quoted_and_ids_travel_as_one_array() -> None:
    assert dialect.insert_incoming("my.order", "select") == (
        'INSERT INTO "my"."order" ("select")'
        " SELECT x FROM pg_temp.idsync_incoming ON CONFLICT DO NOTHING"
    )
    assert dialect.values_of("t", "c").endswith("= ANY(%s::text[])")


def test_lock_keys_are_stable_signed_64_bit_numbers() -> None:
    key = dialect.lock_key("idsync:maas.cm_cluster_id.cluster_id")
    assert key == dialect.lock_key("idsync:maas.cm_cluster_id.cluster_id")
    assert -(2**63) <= key < 2**63 and key != dialect.lock_key("idsync:maas.t.c")


def test_init_makes_text_in_the_c_collation_unique() -> None:
    ddl = dialect.target_table("t", "c")
    assert '"c" text COLLATE "C" NOT NULL UNIQUE' in ddl and "IF NOT EXISTS" in ddl


def test_history_statements_name_every_field_once() -> None:
    assert dialect.insert_run(FIELDS).count("%s") == len(FIELDS)
    assert dialect.recent_runs(FIELDS, one_job=True).count("%s") == 2
    assert dialect.last_success(FIELDS).count("%s") == 3


def test_application_name_keeps_the_pid_when_the_host_is_long() -> None:
    from idsync.postgres.connection import application_name

    long_host = "node-" + "x" * 80 + ".cluster.example.com"
    named = application_name(long_host, 4194304)
    assert len(named.encode()) <= 63 and named.endswith(" pid=4194304"), named
    assert named.startswith("idsync host=node-xx")
    assert application_name("web-1", 77) == "idsync host=web-1 pid=77"
    assert application_name("hôte", 5) == "idsync host=h?te pid=5"
