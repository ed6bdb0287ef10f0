"""``@task.ray_job`` without a cluster: what is shipped, how it survives KubeRay's two shells, how results return."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kuberay_provider import ray_task
from kuberay_provider.decorators.ray_job import (
    MAX_ENTRYPOINT_BYTES,
    RayJobDecoratedOperator,
    build_entrypoint,
    function_source,
    ray_job_task,
)
from kuberay_provider.errors import InvalidParameterError

# What KubeRay's K8sJobMode submitter does with an entrypoint: it is pasted into a bash script as
# `ray job submit ... -- <entrypoint>`; `ray job submit` joins its argv with subprocess.list2cmdline and the job
# supervisor runs that string with a shell. Two shells, as on a real cluster.
FAKE_RAY_SUBMIT = textwrap.dedent("""
    import subprocess, sys
    argv = sys.argv[sys.argv.index("--") + 1:]
    sys.exit(subprocess.run(subprocess.list2cmdline(argv), shell=True).returncode)
""")


def run_like_kuberay(entrypoint: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run ``entrypoint`` through the submitter's bash and Ray's re-quoting, with a ``python`` that has only the
    standard library (no site-packages: no Airflow, no kuberay_provider), like a bare interpreter on the cluster."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    python = bin_dir / "python"
    python.write_text(f"#!/bin/sh\nexec {sys.executable} -I -S \"$@\"\n")
    python.chmod(python.stat().st_mode | stat.S_IEXEC)
    submit = tmp_path / "ray_job_submit.py"
    submit.write_text(FAKE_RAY_SUBMIT)
    script = f"set -e; {sys.executable} {submit} --submission-id x -- {entrypoint}"
    env = {"PATH": f"{bin_dir}{os.pathsep}/usr/bin:/bin", "HOME": str(tmp_path)}
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=60)


def payload(fn, *args, limit: int = 65536, **kwargs) -> dict:
    return {"task_id": "t", "name": fn.__name__, "source": function_source(fn), "args": list(args), "kwargs": kwargs,
            "limit_bytes": limit}


def _decorated(fn):
    return fn


@_decorated
def add_and_describe(a: int, b: int, label: str = "sum") -> dict:
    import json  # imports inside the body are what reach the cluster

    quoted = "quotes \" and ' and $HOME `x` !bang\\n"  # shell metacharacters and escapes in the source
    return {"label": label, "value": a + b, "quoted": quoted, "json": json.dumps([a, b])}


def explode(row: int) -> None:
    values = {"row": row}
    raise ValueError(f"bad input row {values['row']}")


def test_a_function_survives_both_shells_and_returns_its_value(tmp_path):
    entrypoint = build_entrypoint(payload(add_and_describe, 2, 3, label="total"))
    result = run_like_kuberay(entrypoint, tmp_path)
    assert result.returncode == 0, result.stderr
    value = ray_task.parse_result(result.stdout.splitlines())
    assert value == {"label": "total", "value": 5, "quoted": "quotes \" and ' and $HOME `x` !bang\\n", "json": "[2, 3]"}


def test_a_function_that_raises_exits_1_with_its_traceback_and_source_line(tmp_path):
    result = run_like_kuberay(build_entrypoint(payload(explode, 7)), tmp_path)
    assert result.returncode == ray_task.FAILED_EXIT
    assert "Traceback (most recent call last)" in result.stderr
    assert "ValueError: bad input row 7" in result.stderr
    assert "raise ValueError(f\"bad input row {values['row']}\")" in result.stderr  # the source line is shown
    assert ray_task.RESULT_MARKER not in result.stdout


def test_a_return_value_above_the_limit_fails_naming_the_size(tmp_path):
    def big() -> str:
        return "x" * 5000

    result = run_like_kuberay(build_entrypoint(payload(big, limit=1000)), tmp_path)
    assert result.returncode == ray_task.FAILED_EXIT
    assert "5002 bytes of JSON, above the limit of 1000 bytes" in result.stderr


def test_a_value_that_is_not_json_fails_clearly(tmp_path):
    def returns_a_set() -> object:
        return {1, 2}

    result = run_like_kuberay(build_entrypoint(payload(returns_a_set)), tmp_path)
    assert result.returncode == ray_task.FAILED_EXIT
    assert "cannot return the value" in result.stderr and "set" in result.stderr


def test_results_come_back_in_chunks_and_the_last_complete_one_wins():
    value = {"weights": list(range(3000))}
    lines = ray_task.result_lines(value, 10**6)
    assert len(lines) > 1 and all(len(line) < 4100 for line in lines)
    retried = ["noise", *ray_task.result_lines("first try", 100), "more noise", *lines, "Job 'x' succeeded"]
    assert ray_task.parse_result(retried) == value
    with pytest.raises(ray_task.ResultError, match="no complete"):
        ray_task.parse_result(lines[:-1])
    with pytest.raises(ray_task.ResultError, match="no complete"):
        ray_task.parse_result(["hello", "world"])
    assert ray_task.parse_result([f"[driver] {line}" for line in lines]) == value  # prefixed log lines


def test_function_source_drops_decorators_and_refuses_what_cannot_be_shipped():
    source = function_source(add_and_describe)
    assert source.startswith("def add_and_describe(") and "@_decorated" not in source
    assert compile(source, "x", "exec")
    factor = 3

    def closure(x: int) -> int:
        return x * factor

    with pytest.raises(InvalidParameterError, match=r"python_callable=.*enclosing function \(factor\)"):
        function_source(closure)
    with pytest.raises(InvalidParameterError, match="not a lambda"):
        function_source(lambda x: x)

    async def coro() -> None:
        return None

    with pytest.raises(InvalidParameterError, match="not async"):
        function_source(coro)


def test_decorator_refuses_context_arguments_an_entrypoint_and_other_submission_modes():
    def uses_ds(ds: str) -> str:
        return ds

    with pytest.raises(InvalidParameterError, match=r"context arguments \(ds\).*'\{\{ ds \}\}'"):
        RayJobDecoratedOperator(task_id="t", python_callable=uses_ds)
    with pytest.raises(InvalidParameterError, match=r"entrypoint=.*is the decorated function itself"):
        RayJobDecoratedOperator(task_id="t", python_callable=explode, op_args=[1], entrypoint="python x.py")
    with pytest.raises(InvalidParameterError, match=r"submission_mode=.*must be K8sJobMode"):
        RayJobDecoratedOperator(task_id="t", python_callable=explode, op_args=[1], submission_mode="HTTPMode")


def test_arguments_must_be_json_and_fit_the_entrypoint():
    op = RayJobDecoratedOperator(task_id="t", python_callable=explode, op_args=[{1, 2}])
    with pytest.raises(InvalidParameterError, match=r"op_args\[0\]=.*JSON-serialisable"):
        op.execute({})
    op = RayJobDecoratedOperator(task_id="t", python_callable=explode, op_kwargs={"row": os.urandom(80_000).hex()})
    with pytest.raises(InvalidParameterError, match=f"must fit the {MAX_ENTRYPOINT_BYTES} bytes"):
        op.execute({})


def test_task_ray_job_is_registered_and_maps_like_any_task():
    from airflow.providers.common.compat.sdk import DAG, task

    assert task.ray_job is not None
    with DAG(dag_id="decorated", schedule=None) as dag:
        @task
        def rows() -> list[int]:
            return [1, 2]

        @task.ray_job(head={"cpu": 1, "memory": "1Gi"}, worker_groups=[{"name": "w", "replicas": 1}])
        def square(x: int) -> int:
            return x * x

        square.expand(x=rows())
        single = square(5)
    assert {"rows", "square", "square__1"} <= set(dag.task_dict)
    assert single.operator.worker_groups == [{"name": "w", "replicas": 1}]
    assert ray_job_task is not None
