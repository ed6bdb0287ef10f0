"""The local stack models container images: a ``rayproject/ray`` cluster imports only Ray's own libraries plus what
the RayJob's runtime_env ships or installs; a custom image provides everything installed.

Fast tests cover the allow-list computation and the runtime_env check; slow ones run real RayJobs on the stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement

from kuberay_provider.local import images

STOCK = "rayproject/ray:2.60.0-py311"
CUSTOM = "us-docker.pkg.dev/acme/ml/churn-trainer:1.4"

# ------------------------------------------------------------------ allow-list computation (fast)


@pytest.mark.parametrize(("image", "modelled"), [
    (STOCK, True), ("rayproject/ray:2.60.0", True), ("rayproject/ray", True), ("docker.io/rayproject/ray:latest", True),
    ("rayproject/ray-ml:2.9.0-gpu", True), ("rayproject/ray@sha256:" + "a" * 64, True),
    (CUSTOM, False), ("rayproject/rayfoo:1", False), ("acme/ray:2.60.0", False), ("localhost:5000/rayproject", False),
    ("", False), (None, False),
])  # fmt: skip
def test_which_images_are_modelled(image: str | None, modelled: bool) -> None:
    assert images.models_image(image) is modelled


def test_image_distributions_are_rays_extras_closure() -> None:
    allowed = images.image_distributions()
    # Ray itself, what its default/data/train extras name directly, and what those pull in.
    assert {"ray", "aiohttp", "grpcio", "pydantic", "pandas", "pyarrow", "numpy", "fsspec", "tensorboardx",
            "smart_open", "virtualenv", "opencensus"} <= allowed
    assert {"yarl", "pydantic_core", "google_api_core", "python_dateutil"} <= allowed  # transitive
    assert {"pip", "setuptools"} <= allowed
    # Installed in the venv, but no stock Ray image has them.
    for absent in ("apache_airflow", "apache_airflow_core", "airflow_provider_kuberay", "pyspark", "xgboost_cpu",
                   "scikit_learn", "google_cloud_bigquery", "kubernetes", "bqemulator"):
        assert absent not in allowed


def test_closure_follows_extras_and_markers() -> None:
    assert "yarl" in images.requirement_closure([Requirement("aiohttp")])
    assert images.requirement_closure([Requirement("ray")]) < images.requirement_closure([Requirement("ray[default]")])
    assert images.requirement_closure([Requirement("ray; python_version < '3'")]) == set()
    assert images.requirement_closure([Requirement("not-a-real-dist-xyz")]) == set()


def test_import_keys_split_shared_namespaces() -> None:
    # In a fresh interpreter, as the local stack computes it once at start: the pytest process may have imported and
    # patched things (other tests' fixtures) that a real stack process never sees.
    import json
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("KUBERAY_LOCAL")}
    out = subprocess.run([sys.executable, "-c", "import json; from kuberay_provider.local import images; "
                          "print(json.dumps(images.import_keys()))"], capture_output=True, text=True, timeout=120,
                         check=True, env=env)
    keys, shared = json.loads(out.stdout.strip().splitlines()[-1])
    assert keys["ray"] == ["ray"]
    assert keys["google/cloud/bigquery"] == ["google_cloud_bigquery"]
    assert keys["google/protobuf"] == ["protobuf"]
    assert "airflow" in shared  # several distributions (core, task-sdk, providers) install into airflow/
    assert "google" not in keys  # a namespace directory, never a key


# ------------------------------------------------------------------ runtime_env install fields (fast)


def test_installed_pip_entries_are_stripped_and_allowed() -> None:
    prepared = images.prepare_runtime_env(
        {"pip": ["xgboost-cpu>=2", "scikit-learn"], "env_vars": {"A": "1"}, "py_modules": ["file:///x/p.zip"]}, STOCK)
    assert prepared.error is None
    env = prepared.runtime_env
    assert "pip" not in env and env["py_modules"] == ["file:///x/p.zip"]
    extra = env["env_vars"][images.EXTRA_ENV].split(",")
    assert {"xgboost_cpu", "scikit_learn", "scipy", "joblib", "threadpoolctl", "numpy"} <= set(extra)
    assert env["env_vars"]["A"] == "1"


@pytest.mark.parametrize("field", ["pip", "uv"])
def test_packages_dict_form(field: str) -> None:
    prepared = images.prepare_runtime_env({field: {"packages": ["db-dtypes"], "pip_check": False}}, STOCK)
    assert prepared.error is None and field not in prepared.runtime_env
    assert "db_dtypes" in prepared.distributions


def test_requirements_file_and_conda(tmp_path: Path) -> None:
    (tmp_path / "base.txt").write_text("# base\nscikit-learn\n")
    (tmp_path / "req.txt").write_text("-r base.txt\n--index-url https://example.invalid/simple\nxgboost-cpu  # model\n")
    prepared = images.prepare_runtime_env({"pip": str(tmp_path / "req.txt")}, STOCK)
    assert prepared.error is None and {"scikit_learn", "xgboost_cpu"} <= set(prepared.distributions)
    conda = {"dependencies": ["python=3.11", "pip", "scikit-learn=1.9", {"pip": ["db-dtypes"]}]}
    prepared = images.prepare_runtime_env({"conda": conda}, STOCK)
    assert prepared.error is None and "conda" not in prepared.runtime_env
    assert {"scikit_learn", "db_dtypes"} <= set(prepared.distributions)


@pytest.mark.parametrize(("runtime_env", "fragment"), [
    ({"pip": ["definitely-not-installed-xyz"]}, "'definitely-not-installed-xyz' (not installed)"),
    ({"pip": ["xgboost-cpu==0.1"]}, "'xgboost-cpu==0.1' (installed: "),
    ({"pip": ["git+https://github.com/acme/lib"]}, "cannot fetch paths or URLs"),
    ({"pip": ["lib @ https://example.invalid/lib.whl"]}, "never downloads"),
    ({"pip": ["-e ./lib"]}, "cannot be honoured locally"),
    ({"uv": ["definitely-not-installed-xyz"]}, "runtime_env uv"),
    ({"pip": "/nonexistent/requirements.txt"}, "not a requirements file"),
    ({"pip": 3}, "expected a list of requirements"),
    ({"conda": "my-env"}, "named conda environment"),
])  # fmt: skip
def test_uninstallable_entries_fail_clearly(runtime_env: dict[str, Any], fragment: str) -> None:
    prepared = images.prepare_runtime_env({**runtime_env, "env_vars": {"A": "1"}}, STOCK)
    assert prepared.error is not None and fragment in prepared.error
    assert prepared.error.startswith("runtime_env ")  # names the field
    env = prepared.runtime_env
    assert not set(images.INSTALL_FIELDS) & set(env)
    assert env[images.PLUGIN_FIELD] == {"error": prepared.error}


def test_custom_image_gets_no_policy_variables() -> None:
    prepared = images.prepare_runtime_env({"pip": ["scikit-learn"]}, CUSTOM)
    assert prepared.runtime_env == {} and prepared.error is None
    assert images.prepare_runtime_env(None, STOCK).runtime_env is None


def test_local_uris_are_allowed_dirs() -> None:
    env = images.prepare_runtime_env({"py_modules": ["local:///opt/code"], "working_dir": "local:///srv/app"}, STOCK)
    assert env.runtime_env["env_vars"][images.DIRS_ENV].split(os.pathsep) == ["/srv/app", "/opt/code"]


def test_node_env(tmp_path: Path) -> None:
    base = {"PYTHONPATH": "/host/code", "PATH": "/bin", "KUBERAY_LOCAL_IMAGE": "stale"}
    stock = images.node_env(STOCK, base, tmp_path, [Path("/tmp/krl-1")])
    assert stock["PYTHONPATH"] == str(tmp_path) and stock["KUBERAY_LOCAL_IMAGE"] == STOCK
    assert stock["KUBERAY_LOCAL_IMAGE_ROOTS"] == "/tmp/krl-1" and stock["PATH"] == "/bin"
    custom = images.node_env(CUSTOM, base, tmp_path, [])
    assert custom["PYTHONPATH"] == f"{tmp_path}{os.pathsep}/host/code" and "KUBERAY_LOCAL_IMAGE" not in custom
    assert json.loads(custom["RAY_RUNTIME_ENV_PLUGINS"]) == [{"class": "kuberay_local_install_check.InstallCheck"}]


# ------------------------------------------------------------------ the generated sitecustomize (fast, no Ray)


@pytest.fixture(scope="module")
def site_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return images.write_site_dir(tmp_path_factory.mktemp("image-site"))


def _python(site_dir: Path, code: str, *, image: str | None = STOCK, extra: str = "", roots: str = "",
            cwd: Path | None = None, pythonpath: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERAY_LOCAL_IMAGE")}
    env["PYTHONPATH"] = pythonpath if pythonpath is not None else str(site_dir)
    if image:
        env.update(KUBERAY_LOCAL_IMAGE=image, KUBERAY_LOCAL_IMAGE_EXTRA=extra, KUBERAY_LOCAL_IMAGE_ROOTS=roots)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True,
                          timeout=120, cwd=cwd or site_dir, check=False)


def test_stock_image_refuses_airflow_and_this_package(site_dir: Path) -> None:
    for module in ("airflow", "kuberay_provider", "pyspark", "google.cloud.bigquery", "xgboost", "sklearn"):
        result = _python(site_dir, f"import {module}")
        assert result.returncode == 1, (module, result.stderr)
        assert f"ModuleNotFoundError: No module named '{module}' in image '{STOCK}'" in result.stderr, result.stderr


def test_stock_image_allows_ray_and_its_libraries(site_dir: Path) -> None:
    result = _python(site_dir, """
        import json, sqlite3, ray, ray.data, pyarrow, pandas, aiohttp, grpc, google.protobuf, google.api_core
        import importlib.metadata as md
        names = {d.metadata["Name"].lower() for d in md.distributions()}
        assert "ray" in names and "apache-airflow" not in names and "pyspark" not in names, sorted(names)
        print("ok")
    """)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_pip_extra_and_runtime_dirs_are_allowed(site_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "kuberay_provider").mkdir()  # a same-named module shipped through py_modules wins, and is allowed
    (tmp_path / "kuberay_provider" / "__init__.py").write_text("SHIPPED = True\n")
    code = "import sklearn, xgboost, kuberay_provider; assert kuberay_provider.SHIPPED; print('ok')"
    extra = images.prepare_runtime_env({"pip": ["scikit-learn", "xgboost-cpu"]}, STOCK).runtime_env["env_vars"]
    result = _python(site_dir, code, extra=extra[images.EXTRA_ENV], roots=str(tmp_path),
                     pythonpath=f"{tmp_path}{os.pathsep}{site_dir}")
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
    # The shipped package does not reach the host's copy of its other modules (editable install, PYTHONPATH).
    result = _python(site_dir, "import kuberay_provider.operators", roots=str(tmp_path),
                     pythonpath=f"{tmp_path}{os.pathsep}{site_dir}")
    assert "No module named 'kuberay_provider.operators'" in result.stderr


def test_custom_image_provides_everything(site_dir: Path) -> None:
    code = "import importlib.util, kuberay_provider, sklearn; assert importlib.util.find_spec('airflow'); print('ok')"
    result = _python(site_dir, code, image=None,
                     pythonpath=f"{site_dir}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


# ------------------------------------------------------------------ on the local stack (slow: real Ray)

GROUP, VERSION = "ray.io", "v1"
RAY_TIMEOUT = 240


def _wait(predicate: Callable[[], Any], timeout: float) -> Any:
    from tests.integration.airflow_support import wait_until

    return wait_until(predicate, timeout=timeout)


def _head(image: str) -> dict[str, Any]:
    return {"rayStartParams": {}, "template": {"spec": {"containers": [
        {"name": "ray-head", "image": image, "resources": {"limits": {"cpu": "1"}}}]}}}


class Jobs:
    """Creates RayJobs on the stack and waits for their outcome."""

    def __init__(self, stack: Any, namespace: str) -> None:
        from kubernetes import client, config

        api = config.new_client_from_config(config_file=str(stack.kubeconfig_path))
        self.crd, self.core, self.namespace, self.stack = client.CustomObjectsApi(api), client.CoreV1Api(api), namespace, stack

    def run(self, name: str, entrypoint: str, *, image: str | None = None, cluster: str | None = None,
            runtime_env: dict[str, Any] | None = None) -> dict[str, Any]:
        spec: dict[str, Any] = {"entrypoint": entrypoint}
        if cluster:
            spec["clusterSelector"] = {"ray.io/cluster": cluster}
        else:
            spec.update(rayClusterSpec={"headGroupSpec": _head(image or STOCK)}, shutdownAfterJobFinishes=True,
                        ttlSecondsAfterFinished=0)
        if runtime_env:
            spec["runtimeEnvYAML"] = yaml.safe_dump(runtime_env)
        body = {"apiVersion": "ray.io/v1", "kind": "RayJob", "metadata": {"name": name}, "spec": spec}
        self.crd.create_namespaced_custom_object(GROUP, VERSION, self.namespace, "rayjobs", body)

        def done() -> dict[str, Any] | None:
            status = self.crd.get_namespaced_custom_object(GROUP, VERSION, self.namespace, "rayjobs", name).get("status")
            return status if (status or {}).get("jobDeploymentStatus") in ("Complete", "Failed") else None

        return _wait(done, RAY_TIMEOUT)

    def log(self, name: str) -> str:
        pods = self.core.list_namespaced_pod(self.namespace, label_selector=f"batch.kubernetes.io/job-name={name}").items
        assert pods, f"no submitter pod for {name}"
        return self.core.read_namespaced_pod_log(pods[-1].metadata.name, self.namespace, container="ray-job-submitter",
                                                 _preload_content=False).data.decode()

    def cluster(self, name: str, image: str) -> None:
        body = {"apiVersion": "ray.io/v1", "kind": "RayCluster", "metadata": {"name": name},
                "spec": {"headGroupSpec": _head(image)}}
        self.crd.create_namespaced_custom_object(GROUP, VERSION, self.namespace, "rayclusters", body)
        _wait(lambda: (self.crd.get_namespaced_custom_object(GROUP, VERSION, self.namespace, "rayclusters", name)
                       .get("status") or {}).get("state") == "ready", RAY_TIMEOUT)

    def cleanup(self) -> None:
        for plural in ("rayjobs", "rayclusters"):
            for obj in self.crd.list_namespaced_custom_object(GROUP, VERSION, self.namespace, plural)["items"]:
                self.crd.delete_namespaced_custom_object(GROUP, VERSION, self.namespace, plural, obj["metadata"]["name"])
        _wait(lambda: not any(ns == self.namespace for ns, _ in self.stack.controller.running_clusters()), 60)


@pytest.mark.slow
def test_custom_image_provides_everything_installed(local_stack: Any) -> None:
    # Runs before the module's stock cluster exists: the stack runs one cluster at a time.
    jobs = Jobs(local_stack, f"img-custom-{os.getpid()}")
    try:
        status = jobs.run("custom", "python -c \"import airflow, kuberay_provider; print('custom image ok')\"",
                          image=CUSTOM)
        assert (status["jobDeploymentStatus"], status["jobStatus"]) == ("Complete", "SUCCEEDED"), status
        assert "custom image ok" in jobs.log("custom")
    finally:
        jobs.cleanup()


@pytest.fixture(scope="module")
def stock_cluster(local_stack: Any) -> Iterator[Jobs]:
    """One standalone stock-image RayCluster the module's jobs run on (``clusterSelector``)."""
    jobs = Jobs(local_stack, f"img-{os.getpid()}")
    try:
        jobs.cluster("stock", STOCK)
        yield jobs
    finally:
        jobs.cleanup()


@pytest.mark.slow
def test_driver_importing_airflow_fails_on_a_stock_image(stock_cluster: Jobs) -> None:
    status = stock_cluster.run("imports-airflow", "python -c \"import airflow\"", cluster="stock")
    assert (status["jobDeploymentStatus"], status["jobStatus"], status["reason"]) == ("Failed", "FAILED", "AppFailed")
    log = stock_cluster.log("imports-airflow")
    assert f"ModuleNotFoundError: No module named 'airflow' in image '{STOCK}'" in log, log


@pytest.mark.slow
def test_module_shipped_with_py_modules_is_importable(stock_cluster: Jobs, tmp_path: Path) -> None:
    from kuberay_provider.pipelines.packaging import build_zip, package_name, stage

    (tmp_path / "src" / "churnlib").mkdir(parents=True)
    (tmp_path / "src" / "churnlib" / "__init__.py").write_text("def answer():\n    return 42\n")
    payload = build_zip(tmp_path / "src", top_level="py_modules")
    uri = stage(payload, str(tmp_path / "stage"), package_name(payload, "py_modules"))
    entrypoint = "python -c \"import churnlib, sklearn; print('answer', churnlib.answer())\""
    status = stock_cluster.run("shipped", entrypoint, cluster="stock",
                               runtime_env={"py_modules": [uri], "pip": ["scikit-learn"]})
    assert (status["jobDeploymentStatus"], status["jobStatus"]) == ("Complete", "SUCCEEDED"), status
    assert "answer 42" in stock_cluster.log("shipped")


@pytest.mark.slow
def test_pip_entry_not_installed_fails_like_an_install_failure(stock_cluster: Jobs) -> None:
    status = stock_cluster.run("no-such-pip", "python -c \"print('never runs')\"", cluster="stock",
                               runtime_env={"pip": ["definitely-not-installed-xyz==1.0"]})
    assert (status["jobDeploymentStatus"], status["jobStatus"], status["reason"]) == ("Failed", "FAILED", "AppFailed")
    message = status.get("message", "")
    assert "runtime_env setup failed" in message and "'definitely-not-installed-xyz==1.0' (not installed)" in message
    assert "never runs" not in stock_cluster.log("no-such-pip")
