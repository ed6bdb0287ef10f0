"""A user DAG with the environment variables ML jobs ordinarily set in runtime_env (none of them a secret)."""

from __future__ import annotations

import pendulum

try:
    from airflow.sdk import DAG
except ImportError:  # Airflow 2
    from airflow import DAG

from kuberay_provider.operators.rayjob import RayJobOperator

ENV = {
    "TOKENIZERS_PARALLELISM": "false",
    "MAX_TOKENS": "512",
    "OMP_NUM_THREADS": "1",
    "HF_HOME": "/tmp/hf-home",
    "GOOGLE_APPLICATION_CREDENTIALS": "/var/secrets/google/key.json",
    "WANDB_MODE": "offline",
}

with DAG(dag_id="user_ml_env_vars", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False,
         tags=["tests"]):
    RayJobOperator(
        task_id="train",
        entrypoint="python -c \"import os; print('env', os.environ['TOKENIZERS_PARALLELISM'], os.environ['MAX_TOKENS'])\"",
        kubernetes_conn_id="kuberay_user",
        head={"cpu": 1, "memory": "1Gi"},
        runtime_env={"env_vars": ENV},
        ttl_seconds_after_finished=0,
        pre_running_deadline_seconds=240,
    )
