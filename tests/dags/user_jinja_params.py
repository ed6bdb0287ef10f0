"""A user DAG templated from params and a Variable: numeric settings as Jinja strings, a config path ending in
``.yaml`` in the entrypoint and nested in runtime_env, templated tolerations, the namespace from a Variable."""

from __future__ import annotations

import pendulum

try:
    from airflow.sdk import DAG
except ImportError:  # Airflow 2
    from airflow import DAG

from kuberay_provider.operators.rayjob import RayJobOperator

PRINT_CONFIG = (
    "python -c \"import os, sys; print('config', os.environ['CONFIG_PATH'], 'epochs', os.environ['EPOCHS'], "
    "'args', sys.argv[1:])\" --epochs {{ params.epochs }} --config {{ params.config }}"
)

with DAG(dag_id="user_jinja_params", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False,
         params={"epochs": 3, "config": "conf.yaml", "ttl": 0, "backoff": 0, "deadline": 240, "timeout": 300,
                 "tail": 20, "taint": "ray-only"}, tags=["tests"]):
    RayJobOperator(
        task_id="train",
        entrypoint=PRINT_CONFIG,
        namespace="{{ var.value.kuberay_test_namespace }}",
        head={"cpu": 1, "memory": "1Gi"},
        runtime_env={"env_vars": {"CONFIG_PATH": "configs/{{ params.config }}", "EPOCHS": "{{ params.epochs }}"}},
        tolerations=[{"key": "{{ params.taint }}", "operator": "Exists", "effect": "NoSchedule"}],
        ttl_seconds_after_finished="{{ params.ttl }}",
        backoff_limit="{{ params.backoff }}",
        pre_running_deadline_seconds="{{ params.deadline }}",
        timeout="{{ params.timeout }}",
        log_tail_lines="{{ params.tail }}",
    )
