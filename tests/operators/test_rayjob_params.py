"""RayJobOperator: parameters are checked when the DAG is parsed, and build_manifest is pure."""

from __future__ import annotations

from datetime import timedelta

import pytest
import yaml

from kuberay_provider import constants as c
from kuberay_provider.errors import InvalidParameterError
from kuberay_provider.naming import TaskInstanceIdentity
from kuberay_provider.operators.rayjob import RayJobOperator

IDENT = TaskInstanceIdentity("etl", "train", "scheduled__2026-11-22T00:00:00+00:00", map_index=-1, try_number=2)


def op(**kw) -> RayJobOperator:
    kw.setdefault("task_id", "train")
    if "manifest" not in kw:
        kw.setdefault("entrypoint", "python train.py")
    return RayJobOperator(**kw)


BAD = [
    # (id, kwargs, parameter named in the message)
    ("submission-mode-typo", {"submission_mode": "K8sJob"}, "submission_mode"),
    ("submission-mode-lower", {"submission_mode": "httpmode"}, "submission_mode"),
    ("ttl-negative", {"ttl_seconds_after_finished": -1}, "ttl_seconds_after_finished"),
    ("ttl-string-word", {"ttl_seconds_after_finished": "sixty"}, "ttl_seconds_after_finished"),
    ("ttl-string-fraction", {"ttl_seconds_after_finished": "1.5"}, "ttl_seconds_after_finished"),
    ("ttl-without-shutdown", {"shutdown_after_job_finishes": False}, "ttl_seconds_after_finished"),
    ("shutdown-not-bool", {"shutdown_after_job_finishes": "yes"}, "shutdown_after_job_finishes"),
    ("backoff-negative", {"backoff_limit": -1}, "backoff_limit"),
    ("backoff-bool", {"backoff_limit": True}, "backoff_limit"),
    ("prerunning-0", {"pre_running_deadline_seconds": 0}, "pre_running_deadline_seconds"),
    ("active-deadline-0", {"active_deadline_seconds": 0}, "active_deadline_seconds"),
    ("active-deadline-float", {"active_deadline_seconds": 1.5}, "active_deadline_seconds"),
    ("name-48", {"name": "a" * 48}, "name"),
    ("name-upper", {"name": "Train"}, "name"),
    ("name-digit", {"name": "1train"}, "name"),
    ("name-dot", {"name": "my.job"}, "name"),
    ("head-cpu-two", {"head": {"cpu": "two"}}, "head.cpu"),
    ("head-unknown-key", {"head": {"cpus": 2}}, "head.cpus"),
    ("worker-memory-negative", {"worker_groups": [{"memory": "-1Gi"}]}, "worker_groups[0].memory"),
    ("worker-gpus-negative", {"worker_groups": [{"gpus": -1}]}, "worker_groups[0].gpus"),
    ("worker-min-gt-max", {"worker_groups": [{"min_replicas": 3, "max_replicas": 1, "replicas": 1}]},
     "worker_groups[0].min_replicas"),
    ("worker-bad-group-name", {"worker_groups": [{"name": "GPU_Group"}]}, "worker_groups[0].name"),
    ("worker-duplicate-names", {"worker_groups": [{"name": "cpu"}, {"name": "cpu"}]}, "worker_groups"),
    ("worker-duplicate-default-names", {"worker_groups": [{}, {}]}, "worker_groups"),
    ("runtime-env-list", {"runtime_env": ["pip"]}, "runtime_env"),
    ("runtime-env-yaml-list", {"runtime_env": "- pip\n"}, "runtime_env"),
    ("runtime-env-bad-yaml", {"runtime_env": "pip: ["}, "runtime_env"),
    ("on-existing", {"on_existing": "attach"}, "on_existing"),
    ("cleanup-policy", {"cleanup_policy": "never"}, "cleanup_policy"),
    ("namespace-upper", {"namespace": "Ray"}, "namespace"),
    ("namespace-underscore", {"namespace": "ray_jobs"}, "namespace"),
    ("label-value", {"labels": {"run": "scheduled__2026-11-22T00:00:00+00:00"}}, "labels['run']"),
    ("label-key", {"labels": {"bad key": "x"}}, "labels['bad key']"),
    ("timeout-0", {"timeout": 0}, "timeout"),
    ("timeout-negative", {"timeout": -5}, "timeout"),
    ("timeout-bool", {"timeout": True}, "timeout"),
    ("timeout-string-word", {"timeout": "soon"}, "timeout"),
    ("log-tail-string-word", {"log_tail_lines": "many"}, "log_tail_lines"),
    ("log-tail-negative", {"log_tail_lines": -1}, "log_tail_lines"),
    ("image-space", {"image": "rayproject/ray 2.60"}, "image"),
    ("image-empty", {"image": ""}, "image"),
    ("cluster-selector-blank", {"cluster_selector": " "}, "cluster_selector"),
    ("no-entrypoint", {"entrypoint": None}, "entrypoint"),
    ("empty-entrypoint", {"entrypoint": ""}, "entrypoint"),
]


@pytest.mark.parametrize(("kwargs", "parameter"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_parameters_are_rejected_at_construction(kwargs, parameter):
    with pytest.raises(InvalidParameterError) as err:
        op(**kwargs)
    assert err.value.parameter == parameter
    assert str(err.value).startswith(f"Invalid {parameter}=")


# Cross-field rules and malformed shapes: caught at construction by the operator's dry build.
LATE = [
    ("manifest-kind-pod", {"manifest": {"apiVersion": "v1", "kind": "Pod", "spec": {}}}, "manifest.kind"),
    ("manifest-yaml-invalid", {"manifest": "kind: RayJob\nspec: [\n"}, "manifest"),
    ("backoff-with-cluster-selector", {"cluster_selector": "shared", "backoff_limit": 2}, "backoff_limit"),
    ("sidecar-with-cluster-selector", {"cluster_selector": "shared", "submission_mode": "SidecarMode"}, "submission_mode"),
    ("worker-groups-dict", {"worker_groups": {"cpu": 2}}, "worker_groups"),
    ("head-string", {"head": "big"}, "head"),
    ("worker-group-not-mapping", {"worker_groups": ["big"]}, "worker_groups[0]"),
    ("ttl-none", {"ttl_seconds_after_finished": None}, "ttl_seconds_after_finished"),
]


@pytest.mark.parametrize(("kwargs", "parameter"), [b[1:] for b in LATE], ids=[b[0] for b in LATE])
def test_cross_field_and_shape_errors_are_rejected_at_construction(kwargs, parameter):
    with pytest.raises(InvalidParameterError) as err:
        op(**kwargs)
    assert err.value.parameter == parameter


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"name": "{{ ti.task_id }}-x"},  # templated: checked after rendering
        {"namespace": "{{ var.value.ns }}"},
        {"labels": {"run": "{{ run_id }}"}},
        {"runtime_env": "{{ var.json.env }}"},
        {"head": {"cpu": "{{ params.cpu }}"}},
        {"submission_mode": "InteractiveMode", "entrypoint": None},
        {"manifest": "rayjob.yaml", "entrypoint": None},  # a template file, rendered later
        {"shutdown_after_job_finishes": False, "ttl_seconds_after_finished": 0},
        {"timeout": 0.5},
        # what Jinja renders (strings holding integers) and native rendering gives (ints, integral floats)
        {"ttl_seconds_after_finished": "60", "backoff_limit": "0", "pre_running_deadline_seconds": "600",
         "active_deadline_seconds": "3600", "log_tail_lines": "20", "timeout": "90"},
        {"ttl_seconds_after_finished": 60.0, "timeout": "1.5"},
        {"ttl_seconds_after_finished": "{{ params.ttl }}", "backoff_limit": "{{ params.b }}",
         "log_tail_lines": "{{ params.n }}", "timeout": "{{ params.t }}"},
        {"entrypoint": "python train.py --config conf.yaml"},
        {"cluster_selector": "shared"},
        {"worker_groups": [{"name": "cpu", "min_replicas": 0, "max_replicas": 10, "replicas": 0},
                           {"name": "gpu", "gpus": 1, "replicas": 1}]},
    ],
)
def test_good_parameters_construct(kwargs):
    task = op(**kwargs)
    assert task.task_id == "train"


# -- build_manifest ------------------------------------------------------------------------------------------

def test_build_manifest_defaults():
    m = op().build_manifest(IDENT)
    meta, spec = m["metadata"], m["spec"]
    assert meta["name"] == IDENT.rayjob_name() and len(meta["name"]) <= 47
    assert meta["namespace"] == "default"
    assert meta["labels"] == IDENT.labels()
    assert meta["annotations"][c.RUN_ID_ANNOTATION] == IDENT.run_id
    assert spec["entrypoint"] == "python train.py"
    assert spec["submissionMode"] == "K8sJobMode"
    assert spec["shutdownAfterJobFinishes"] is True
    assert spec["ttlSecondsAfterFinished"] == 60
    assert spec["backoffLimit"] == 0
    assert spec["preRunningDeadlineSeconds"] == 900
    assert "activeDeadlineSeconds" not in spec
    head = spec["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    assert head["image"] == "rayproject/ray:2.60.0-py311"
    assert spec["rayClusterSpec"]["workerGroupSpecs"] == []


def test_build_manifest_is_deterministic_and_differs_per_try():
    task = op()
    assert task.build_manifest(IDENT) == task.build_manifest(IDENT)
    retry = TaskInstanceIdentity(IDENT.dag_id, IDENT.task_id, IDENT.run_id, IDENT.map_index, 3)
    assert task.build_manifest(retry)["metadata"]["name"] != task.build_manifest(IDENT)["metadata"]["name"]
    mapped = TaskInstanceIdentity(IDENT.dag_id, IDENT.task_id, IDENT.run_id, 5, 2)
    assert task.build_manifest(mapped)["metadata"]["labels"][c.MAP_INDEX_LABEL] == "5"


@pytest.mark.parametrize(
    ("kwargs", "deadline"),
    [
        ({"execution_timeout": timedelta(hours=2)}, 7200),
        ({"timeout": 600}, 600),
        ({"timeout": 600, "execution_timeout": timedelta(hours=2)}, 600),
        ({"timeout": 90.9}, 91),  # rounded up: KubeRay must not cut the job before the wait ends
        ({"active_deadline_seconds": 30, "execution_timeout": timedelta(hours=2)}, 30),
    ],
)
def test_active_deadline_from_execution_timeout(kwargs, deadline):
    assert op(**kwargs).build_manifest(IDENT)["spec"]["activeDeadlineSeconds"] == deadline


def test_sub_second_timeout_gives_a_valid_deadline():
    assert op(timeout=0.5).build_manifest(IDENT)["spec"]["activeDeadlineSeconds"] >= 1


def test_build_manifest_with_everything():
    task = op(
        name="train-custom", namespace="ray", labels={"team": "ml"}, annotations={"owner": "me"},
        image="rayproject/ray:2.60.0-py311", head={"cpu": 2, "memory": "8Gi"},
        worker_groups=[{"name": "gpu", "gpus": 1, "min_replicas": 0, "max_replicas": 4, "replicas": 1,
                        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]}],
        runtime_env={"pip": ["torch"]}, service_account="ray", node_selector={"pool": "ray"},
        image_pull_secrets=["regcred"], ray_version="2.60.0", backoff_limit=1, job_id="train-job",
        entrypoint_num_cpus=1, submission_mode="HTTPMode",
    )
    m = task.build_manifest(IDENT)
    assert (m["metadata"]["name"], m["metadata"]["namespace"]) == ("train-custom", "ray")
    assert m["metadata"]["labels"]["team"] == "ml" and m["metadata"]["labels"][c.TASK_INSTANCE_LABEL] == IDENT.key
    assert m["metadata"]["annotations"]["owner"] == "me"
    spec = m["spec"]
    assert (spec["submissionMode"], spec["backoffLimit"], spec["jobId"]) == ("HTTPMode", 1, "train-job")
    assert yaml.safe_load(spec["runtimeEnvYAML"]) == {"pip": ["torch"]}
    cluster = spec["rayClusterSpec"]
    assert cluster["enableInTreeAutoscaling"] is True and cluster["rayVersion"] == "2.60.0"
    worker = cluster["workerGroupSpecs"][0]
    assert worker["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert worker["template"]["spec"]["serviceAccountName"] == "ray"
    assert worker["template"]["spec"]["nodeSelector"] == {"pool": "ray"}


def test_identity_labels_win_over_user_labels():
    m = op(labels={c.TASK_INSTANCE_LABEL: "spoofed", "team": "ml"}).build_manifest(IDENT)
    assert m["metadata"]["labels"][c.TASK_INSTANCE_LABEL] == IDENT.key


def test_build_manifest_with_cluster_selector():
    m = op(cluster_selector="shared").build_manifest(IDENT)
    assert m["spec"]["clusterSelector"] == {c.RAY_CLUSTER_LABEL: "shared"}
    assert "rayClusterSpec" not in m["spec"]


USER_MANIFEST = """
apiVersion: ray.io/v1
kind: RayJob
metadata:
  name: whatever
  labels: {team: ml}
spec:
  entrypoint: python user.py
  ttlSecondsAfterFinished: 300
  rayClusterSpec:
    headGroupSpec:
      rayStartParams: {}
      template:
        spec:
          containers:
          - name: ray-head
            image: rayproject/ray:2.60.0
            env: [{name: FOO, value: bar}]
"""


@pytest.mark.parametrize("as_yaml", [True, False])
def test_build_manifest_from_a_user_manifest(as_yaml):
    manifest = USER_MANIFEST if as_yaml else yaml.safe_load(USER_MANIFEST)
    m = op(manifest=manifest, entrypoint=None, namespace="ray", execution_timeout=timedelta(minutes=30)).build_manifest(IDENT)
    assert m["metadata"]["name"] == IDENT.rayjob_name()
    assert m["metadata"]["namespace"] == "ray"
    assert m["metadata"]["labels"] == {"team": "ml", **IDENT.labels()}
    spec = m["spec"]
    assert spec["entrypoint"] == "python user.py"
    assert spec["ttlSecondsAfterFinished"] == 300  # the user's value is kept
    assert spec["shutdownAfterJobFinishes"] is True and spec["backoffLimit"] == 0
    assert spec["activeDeadlineSeconds"] == 1800
    assert spec["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["env"] == [
        {"name": "FOO", "value": "bar"}
    ]


def test_entrypoint_parameter_overrides_the_manifest():
    m = op(manifest=USER_MANIFEST, entrypoint="python other.py").build_manifest(IDENT)
    assert m["spec"]["entrypoint"] == "python other.py"


def test_user_manifest_with_shutdown_false_is_not_broken_by_defaults():
    user = yaml.safe_load(USER_MANIFEST)
    del user["spec"]["ttlSecondsAfterFinished"]
    user["spec"]["shutdownAfterJobFinishes"] = False
    m = op(manifest=user, entrypoint=None).build_manifest(IDENT)
    assert m["spec"]["shutdownAfterJobFinishes"] is False and "ttlSecondsAfterFinished" not in m["spec"]


def test_invalid_user_manifest_is_rejected_by_build_manifest():
    user = yaml.safe_load(USER_MANIFEST)
    user["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0].pop("name")
    with pytest.raises(InvalidParameterError, match=r"containers\[0\]\.name"):
        op(manifest=user, entrypoint=None).build_manifest(IDENT)


def test_build_manifest_revalidates_rendered_values():
    task = op(name="{{ x }}")
    task.name = "Rendered_Badly"  # what rendering produced
    with pytest.raises(InvalidParameterError, match=r"Invalid metadata\.name="):
        task.build_manifest(IDENT)
