"""Only ``manifest`` may name a template file: on the real rendering path (``dag.resolve_template_files()`` as the
DagBag calls it when parsing, then ``render_template_fields`` as the task runner calls it), every other string that
ends in ``.yaml``/``.yml`` — top-level or nested — renders as a string, even when such a file exists."""

from __future__ import annotations

from pathlib import Path

import pendulum
import pytest
import yaml

from kuberay_provider.compat import DAG
from kuberay_provider.operators.rayjob import RayJobOperator
from kuberay_provider.operators.templating import TemplateFile, as_template_file

MANIFEST = """\
apiVersion: ray.io/v1
kind: RayJob
metadata: {name: from-file}
spec:
  entrypoint: python run.py --date {{ ds }} --config {{ params.config }}
  rayClusterSpec:
    headGroupSpec:
      rayStartParams: {}
      template:
        spec:
          containers: [{name: ray-head, image: "rayproject/ray:2.60.0-py311"}]
"""


@pytest.fixture
def search_path(tmp_path: Path) -> Path:
    (tmp_path / "rayjob.yaml").write_text(MANIFEST)
    (tmp_path / "conf.yaml").write_text("THIS FILE MUST NOT BE LOADED INTO A FIELD\n")
    (tmp_path / "nested.yml").write_text("NOR THIS ONE\n")
    return tmp_path


def _dag(search_path: Path, **kwargs) -> DAG:
    return DAG(dag_id="templating", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
               template_searchpath=[str(search_path)], params={"config": "train.yaml", "n": 3}, **kwargs)


def _render(task: RayJobOperator) -> RayJobOperator:
    task.dag.resolve_template_files()  # what DagBag.bag_dag does when the DAG file is parsed
    task.render_template_fields({"ds": "2026-11-20", "params": {"config": "train.yaml", "n": 3}})
    return task


@pytest.mark.parametrize("native", [False, True], ids=["string", "native"])
def test_strings_ending_in_yaml_render_as_strings(search_path, native):
    with _dag(search_path, render_template_as_native_obj=native):
        task = RayJobOperator(
            task_id="train",
            entrypoint="python train.py --config conf.yaml",
            runtime_env={"env_vars": {"CONFIG": "conf.yaml", "OTHER": "{{ params.config }}"},
                         "py_modules": ["nested.yml"]},
            annotations={"example.com/config": "nested.yml"},
            head={"cpu": 1, "memory": "1Gi", "env": {"CFG": "conf.yaml"}},
            worker_groups=[{"name": "cpu", "env": {"CFG": "{{ params.config }}"}}],
        )
    _render(task)
    assert task.entrypoint == "python train.py --config conf.yaml"
    assert task.runtime_env == {"env_vars": {"CONFIG": "conf.yaml", "OTHER": "train.yaml"}, "py_modules": ["nested.yml"]}
    assert task.annotations == {"example.com/config": "nested.yml"}
    assert task.head["env"] == {"CFG": "conf.yaml"}
    assert task.worker_groups[0]["env"] == {"CFG": "train.yaml"}


def test_the_manifest_file_is_loaded_and_rendered(search_path):
    with _dag(search_path):
        task = RayJobOperator(task_id="train", manifest="rayjob.yaml")
    assert isinstance(task.manifest, TemplateFile)
    _render(task)
    spec = yaml.safe_load(task.manifest)["spec"]
    # the file's Jinja rendered; its entrypoint ends in ".yaml" and stays a string
    assert spec["entrypoint"] == "python run.py --date 2026-11-20 --config train.yaml"


def test_the_manifest_file_is_loaded_at_render_time_without_parse_time_resolution(search_path):
    """A mapped task's unmapped copy is never resolved at parse time: rendering loads the file itself."""
    with _dag(search_path):
        task = RayJobOperator(task_id="train", manifest="rayjob.yaml", entrypoint="python x.py --config conf.yaml")
    task.render_template_fields({"ds": "2026-11-20", "params": {"config": "c.yml"}})
    assert yaml.safe_load(task.manifest)["spec"]["entrypoint"].endswith("--config c.yml")
    assert task.entrypoint == "python x.py --config conf.yaml"


def test_a_missing_manifest_file_fails_naming_it(search_path):
    import jinja2

    with _dag(search_path):
        task = RayJobOperator(task_id="train", manifest="missing.yaml")
    task.dag.resolve_template_files()
    with pytest.raises(jinja2.TemplateNotFound, match=r"missing\.yaml"):
        task.render_template_fields({"params": {}})


@pytest.mark.parametrize(("value", "is_file"), [
    ("rayjob.yaml", True), ("templates/rayjob.yml", True), (" rayjob.yaml ", True),
    ("kind: RayJob\nspec:\n  entrypoint: python x.py --config c.yaml", False),  # a YAML document, not a path
    ("rayjob.json", False), ({"kind": "RayJob"}, False), (None, False),
])
def test_as_template_file(value, is_file):
    assert isinstance(as_template_file(value, (".yaml", ".yml")), TemplateFile) is is_file
