"""An Airflow DAG for idsync: plan a round of _id ranges, then `idsync work` mapped over workers.

Each mapped task runs the same command; together they claim every range of the round from the
idsync_ranges table in the target's database, and each ends once none is left. A task that
fails is retried by Airflow; the range it held is redone by whichever worker claims it after
its lease. The URLs come from the environment of the workers (IDSYNC_MONGO_URI,
IDSYNC_MYSQL_URL or IDSYNC_TARGET_URL), never from the DAG.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow import DAG
from airflow.operators.bash import BashOperator

JOB = "update-cluster-id"
WORKERS = 4
RANGES = 64

with DAG(
    dag_id="idsync_work_update_cluster_id",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=1)},
    tags=["idsync"],
) as dag:
    plan = BashOperator(
        task_id="plan",
        bash_command=f"idsync plan --job {JOB} --ranges {RANGES} --log-format json",
    )
    work = BashOperator.partial(
        task_id="work",
        bash_command=f"idsync work --job {JOB} --lease 120 --log-format json",
        append_env=True,  # the worker's own environment, where the URLs are
    ).expand(env=[{"IDSYNC_WORKER_INDEX": str(n)} for n in range(WORKERS)])  # a label only
    check = BashOperator(
        task_id="check",
        bash_command=f"idsync check --job {JOB} --log-format json",
    )
    plan >> work >> check
