"""Importing the provider (as Airflow's DAG parser does) must not pull in heavy clients.

One fresh interpreter does the work: it imports the provider's parse-time modules, records ``sys.modules``,
and only then imports every module and class that ``get_provider_info()`` names (those may be heavy).

On Airflow 2, ``import airflow`` itself imports kubernetes (airflow.exceptions -> cncf's pod_generator): there the
rule is about what the provider adds on top of ``import airflow``. On Airflow 3 ``import airflow`` is light and the
rule is absolute.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

HEAVY = ["ray", "kubernetes", "kubernetes_asyncio", "pyspark", "google.cloud.bigquery", "google.cloud.bigquery_storage"]
MODULES = [
    "kuberay_provider",
    "kuberay_provider.operators.rayjob",
    "kuberay_provider.operators.raycluster",
    "kuberay_provider.operators.janitor",
    "kuberay_provider.sensors.rayjob",
    "kuberay_provider.pipelines.builder",
    "kuberay_provider.pipelines.tasks",
    "kuberay_provider.lineage",
    "kuberay_provider.decorators.ray_job",
]
DAGS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "dags")

PROBE = textwrap.dedent(
    """
    import importlib, json, sys
    import airflow
    baseline = sorted(sys.modules)
    import kuberay_provider
    info = kuberay_provider.get_provider_info()
    for name in {modules!r}:
        importlib.import_module(name)
    from kuberay_provider.operators.rayjob import RayJobOperator
    from kuberay_provider.naming import TaskInstanceIdentity
    # Building a manifest is parse-time work too (validation): it must stay light as well.
    RayJobOperator(task_id="t", entrypoint="python x.py").build_manifest(TaskInstanceIdentity("d", "t", "r"))
    # Parsing every DAG shipped in dags/ (what the DAG processor does on Composer) must stay light too.
    import os, runpy
    dags = sorted(f for f in os.listdir({dags_dir!r}) if f.endswith(".py"))
    for dag_file in dags:
        runpy.run_path(os.path.join({dags_dir!r}, dag_file))
    modules = sorted(sys.modules)

    named = {{}}
    modules_named = [m for key in ("operators", "sensors", "triggers", "hooks") for group in info.get(key, [])
                     for m in group["python-modules"]]
    classes_named = list(info.get("hook-class-names", [])) + list(info.get("extra-links", []))
    classes_named += [ct["hook-class-name"] for ct in info.get("connection-types", [])]
    classes_named += [d["class-name"] for d in info.get("task-decorators", [])]
    for path in modules_named:
        try:
            importlib.import_module(path)
            named[path] = "module"
        except Exception as exc:
            named[path] = f"error: {{type(exc).__name__}}: {{exc}}"
    for path in classes_named:
        module, _, attr = path.rpartition(".")
        try:
            obj = getattr(importlib.import_module(module), attr)
            named[path] = "class" if isinstance(obj, type) or callable(obj) else f"error: not a class: {{obj!r}}"
        except Exception as exc:
            named[path] = f"error: {{type(exc).__name__}}: {{exc}}"
    print(json.dumps({{"modules": modules, "baseline": baseline, "airflow": airflow.__version__, "info": info,
                      "named": named, "dags": dags}}))
    """
)


def heavy_modules(modules: list[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    home = tmp_path_factory.mktemp("airflow_home")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
    env.update(AIRFLOW_HOME=str(home), AIRFLOW__CORE__LOAD_EXAMPLES="False", PYTHONDONTWRITEBYTECODE="1")
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(modules=MODULES, dags_dir=DAGS_DIR)],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def added_by_provider(probe: dict) -> list[str]:
    """Modules the provider's import added to those ``import airflow`` had already loaded."""
    return sorted(set(probe["modules"]) - set(probe["baseline"]))


def test_no_heavy_module_is_imported(probe):
    assert heavy_modules(added_by_provider(probe)) == []
    if int(probe["airflow"].split(".")[0]) >= 3:
        assert heavy_modules(probe["baseline"]) == [], "on Airflow 3 `import airflow` itself must stay light"
    # The listing is real (the check could fail): the provider and Airflow are in it.
    assert {"kuberay_provider.operators.rayjob", "kuberay_provider.sensors.rayjob", "airflow"} <= set(probe["modules"])
    assert {"example_rayjob.py", "kuberay_janitor.py", "ray_retraining.py"} <= set(probe["dags"])


def test_heavy_module_detection_can_fail():
    found = heavy_modules(["json", "ray", "ray._private.worker", "kubernetes_asyncio.client", "rayleigh", "kubernetes2",
                           "google.cloud.bigquery_storage_v1", "google.cloud.bigquery.client", "pyspark.sql"])
    assert found == ["google.cloud.bigquery.client", "kubernetes_asyncio.client", "pyspark.sql", "ray", "ray._private.worker"]


def test_provider_info_is_well_formed(probe):
    info = probe["info"]
    assert info["package-name"] == "airflow-provider-kuberay"
    assert info["name"] and info["description"]
    from kuberay_provider import __version__

    assert info["versions"] == [__version__]
    integrations = {i["integration-name"] for i in info["integrations"]}
    assert integrations and all(i.get("external-doc-url", "").startswith("https://") for i in info["integrations"])
    for key in ("operators", "sensors", "triggers", "hooks"):
        assert info[key], key
        for group in info[key]:
            assert group["integration-name"] in integrations
            assert group["python-modules"]
    for ct in info["connection-types"]:
        assert ct["connection-type"] and ct["hook-class-name"]
    assert set(info["hook-class-names"]) <= {ct["hook-class-name"] for ct in info["connection-types"]}


def test_every_named_module_and_class_exists(probe):
    named = probe["named"]
    assert named, "get_provider_info() names nothing"
    errors = {path: kind for path, kind in named.items() if kind.startswith("error")}
    assert errors == {}
    assert "kuberay_provider.hooks.kuberay.KubeRayHook" in named
    assert "kuberay_provider.triggers.rayjob" in named


def test_provider_info_is_the_entry_point_target():
    """Airflow discovers the provider through the ``apache_airflow_provider`` entry point."""
    from importlib.metadata import entry_points

    targets = [ep.value for ep in entry_points(group="apache_airflow_provider") if ep.value.startswith("kuberay_provider")]
    assert targets == ["kuberay_provider:get_provider_info"]
