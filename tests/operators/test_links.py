"""The extra links exist while the RayJob runs (deferrable mode too) and point at URLs a browser can open.

A running task is one whose operator stored its links and then deferred (or is still waiting); a finished one has
gone through ``execute_complete``. The links are rendered through Airflow's own link machinery from the metadata
DB (``get_extra_links`` of the task Airflow's UI uses: the serialised task on Airflow 3, the operator on Airflow 2).
"""

from __future__ import annotations

import types
import urllib.parse
import uuid
from typing import Any

import pendulum
import pytest

from kuberay_provider import lifecycle, links
from kuberay_provider.compat import TaskDeferred
from kuberay_provider.errors import InvalidParameterError
from kuberay_provider.hooks.conn_mode import ConnectionMode, GkeTarget
from kuberay_provider.operators.rayjob import RayJobOperator
from tests.integration.airflow_support import AIRFLOW_2
from tests.operators.fakes import FakeHook

API = "https://34.1.2.3"
RAYJOB = "train-abc123"
CLUSTER = "train-abc123-x2b4z"
NAMESPACE = "ml"
GKE = ConnectionMode("gke", GkeTarget(project_id="my-proj", location="europe-west4", cluster_name="ray-gke"))
LINK_NAMES = ("Ray Dashboard", "Cloud Logging", "GKE workload")


def _proxy(service: str) -> str:
    return f"{API}/api/v1/namespaces/{NAMESPACE}/services/{service}:dashboard/proxy/"


# -- URL rules ----------------------------------------------------------------------------------------------
def test_the_default_dashboard_url_is_the_api_server_service_proxy_never_cluster_local():
    url = links.dashboard_link(f"{CLUSTER}-head-svc.{NAMESPACE}.svc.cluster.local:8265", None, namespace=NAMESPACE,
                               cluster=CLUSTER, rayjob=RAYJOB, api_server=API + "/")
    assert url == _proxy(f"{CLUSTER}-head-svc")
    # before KubeRay names the cluster: the RayJob's own head Service (same head Pod)
    assert links.dashboard_link(None, None, namespace=NAMESPACE, cluster=None, rayjob=RAYJOB,
                                api_server=API) == _proxy(f"{RAYJOB}-head-svc")
    assert links.dashboard_link(None, None, namespace=NAMESPACE, cluster=CLUSTER, rayjob=RAYJOB,
                                api_server=None) is None


def test_no_credentials_of_the_api_server_url_reach_a_link():
    assert links.api_server_base("https://user:secret@10.0.0.1:6443/prefix/?token=x") == "https://10.0.0.1:6443/prefix"
    assert links.api_server_base("unix:///sock") is None


def test_a_template_link_waits_for_the_placeholders_it_uses():
    template = "https://ray.example.com/{namespace}/{cluster}/"
    assert links.dashboard_link(None, template, namespace=NAMESPACE, cluster=None, rayjob=RAYJOB) is None
    assert links.dashboard_link(None, template, namespace=NAMESPACE, cluster=CLUSTER,
                                rayjob=RAYJOB) == f"https://ray.example.com/{NAMESPACE}/{CLUSTER}/"
    assert links.dashboard_link(None, "https://ray.example.com/{rayjob}", namespace=NAMESPACE, cluster=None,
                                rayjob=RAYJOB) == f"https://ray.example.com/{RAYJOB}"


def test_a_template_with_an_unknown_placeholder_is_refused_naming_the_rule():
    with pytest.raises(InvalidParameterError, match=r"dashboard_url_template.*\{rayjob\}"):
        RayJobOperator(task_id="t", entrypoint="python x.py", dashboard_url_template="https://x/{token}")
    RayJobOperator(task_id="t", entrypoint="python x.py", dashboard_url_template="https://x/{rayjob}")


def test_the_cloud_logging_query_selects_this_rayjobs_pods_by_label():
    url = links.cloud_logging_link(project_id="my-proj", location="europe-west4", gke_cluster="ray-gke",
                                   namespace=NAMESPACE, rayjob=RAYJOB, ray_cluster=None)
    assert url.startswith("https://console.cloud.google.com/logs/query;query=") and url.endswith("?project=my-proj")
    query = urllib.parse.unquote(url.split("query=", 1)[1].split("?", 1)[0])
    assert 'resource.labels.cluster_name="ray-gke"' in query and f'resource.labels.namespace_name="{NAMESPACE}"' in query
    assert f'labels."k8s-pod/job-name"="{RAYJOB}"' in query  # the submitter Job's pods
    assert f'labels."k8s-pod/ray_io/cluster"=~"^{RAYJOB}-' in query  # KubeRay's <rayjob>-<5> RayCluster


def test_the_gke_workload_link_names_project_location_cluster_and_namespace():
    url = links.gke_workload_link(project_id="my-proj", location="europe-west4", gke_cluster="ray-gke",
                                  namespace=NAMESPACE)
    assert url.startswith("https://console.cloud.google.com/kubernetes/workload/overview?project=my-proj&pageState=")
    assert '"c":["gke/europe-west4/ray-gke"],"n":["ml"]' in urllib.parse.unquote(url)


def test_every_link_is_registered_with_the_provider():
    from kuberay_provider import get_provider_info

    registered = get_provider_info()["extra-links"]
    assert {f"kuberay_provider.links.{type(link).__name__}" for link in RayJobOperator.operator_extra_links} \
        <= set(registered)
    assert {link.name for link in RayJobOperator.operator_extra_links} == set(LINK_NAMES)


# -- the operator stores them while the job runs --------------------------------------------------------------
class _Ti:
    """Records the task instance's XCom pushes."""

    def __init__(self) -> None:
        self.dag_id, self.task_id, self.run_id, self.map_index, self.try_number = "d", "t", "r", -1, 1
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value

    def xcom_pull(self, **_: Any) -> Any:
        return None


class _Hook(FakeHook):
    def __init__(self, mode: ConnectionMode) -> None:
        super().__init__(namespace=NAMESPACE)
        self.connection_mode = mode
        self.api_client = types.SimpleNamespace(configuration=types.SimpleNamespace(host=API))


def _rayjob_status(cluster: str | None, state: str = "Running", status: str = "RUNNING") -> dict[str, Any]:
    return {"name": RAYJOB, "namespace": NAMESPACE, "deployment_status": state, "job_status": status,
            "cluster_name": cluster}


def _deferred(monkeypatch, mode: ConnectionMode = GKE, **kwargs: Any) -> tuple[RayJobOperator, _Ti, TaskDeferred]:
    """Run ``execute`` in deferrable mode up to the deferral (the RayJob exists, KubeRay has not named its cluster)."""
    op = RayJobOperator(task_id="t", entrypoint="python x.py", name=RAYJOB, namespace=NAMESPACE, deferrable=True,
                        **kwargs)
    hook = _Hook(mode)
    monkeypatch.setattr(op, "hook", lambda: hook)
    monkeypatch.setattr(lifecycle, "start_rayjob",
                        lambda *a, **k: lifecycle.Started(RAYJOB, NAMESPACE, reattached=False, created=True))
    ti = _Ti()
    with pytest.raises(TaskDeferred) as deferral:
        op.execute({"ti": ti})
    return op, ti, deferral.value


def test_before_deferring_every_link_is_stored(monkeypatch):
    op, ti, deferral = _deferred(monkeypatch)
    assert ti.pushed[links.DASHBOARD_XCOM_KEY] == _proxy(f"{RAYJOB}-head-svc")
    assert ti.pushed[links.CLOUD_LOGGING_XCOM_KEY].startswith("https://console.cloud.google.com/logs/query")
    assert ti.pushed[links.GKE_WORKLOAD_XCOM_KEY].startswith("https://console.cloud.google.com/kubernetes/")
    if not AIRFLOW_2:  # Airflow 3's UI reads the link's own key: it must be there while the task runs
        for link in op.operator_extra_links:
            assert ti.pushed[link.xcom_key] == ti.pushed[link.data_key]
    assert deferral.kwargs["api_server"] == API


def test_on_a_selected_cluster_the_link_is_its_head_service(monkeypatch):
    _, ti, _ = _deferred(monkeypatch, cluster_selector="shared-ray")
    assert ti.pushed[links.DASHBOARD_XCOM_KEY] == _proxy("shared-ray-head-svc")


def test_a_template_link_is_stored_before_deferring_when_its_placeholders_are_known(monkeypatch):
    _, ti, _ = _deferred(monkeypatch, dashboard_url_template="https://ray.example.com/{namespace}/{rayjob}/")
    assert ti.pushed[links.DASHBOARD_XCOM_KEY] == f"https://ray.example.com/{NAMESPACE}/{RAYJOB}/"


def test_kubeconfig_mode_has_only_the_dashboard_link(monkeypatch):
    _, ti, _ = _deferred(monkeypatch, mode=ConnectionMode("kubeconfig"))
    assert links.DASHBOARD_XCOM_KEY in ti.pushed
    assert links.CLOUD_LOGGING_XCOM_KEY not in ti.pushed and links.GKE_WORKLOAD_XCOM_KEY not in ti.pushed


def test_after_the_trigger_fired_the_dashboard_link_names_the_cluster(monkeypatch):
    op, ti, deferral = _deferred(monkeypatch)
    event = {"status": "success", "message": "done", "name": RAYJOB, "namespace": NAMESPACE,
             "rayjob": _rayjob_status(CLUSTER, "Complete", "SUCCEEDED")}
    op.execute_complete({"ti": ti}, event, **deferral.kwargs)
    assert ti.pushed[links.DASHBOARD_XCOM_KEY] == _proxy(f"{CLUSTER}-head-svc")


def test_resumed_with_the_event_only_the_link_still_names_the_cluster(monkeypatch):
    op, ti, _ = _deferred(monkeypatch)  # dag.test passes only the event, not the deferral's kwargs
    event = {"status": "success", "message": "done", "name": RAYJOB, "namespace": NAMESPACE,
             "rayjob": _rayjob_status(CLUSTER, "Complete", "SUCCEEDED")}
    op.execute_complete({"ti": ti}, event)
    assert ti.pushed[links.DASHBOARD_XCOM_KEY] == _proxy(f"{CLUSTER}-head-svc")


def test_a_sync_wait_stores_the_link_when_a_status_names_the_cluster(monkeypatch):
    op = RayJobOperator(task_id="t", entrypoint="python x.py", name=RAYJOB, namespace=NAMESPACE, deferrable=False)
    hook = _Hook(ConnectionMode("kubeconfig"))
    monkeypatch.setattr(op, "hook", lambda: hook)
    monkeypatch.setattr(lifecycle, "start_rayjob",
                        lambda *a, **k: lifecycle.Started(RAYJOB, NAMESPACE, reattached=False, created=True))
    ti = _Ti()
    seen_while_running: list[str] = []

    def wait_sync(*args: Any, on_status: Any, **kwargs: Any) -> dict[str, Any]:
        from kuberay_provider.status import RayJobStatus

        on_status(RayJobStatus.from_dict(_rayjob_status(CLUSTER)))
        seen_while_running.append(ti.pushed[links.DASHBOARD_XCOM_KEY])
        return {"status": "success", "message": "done", "rayjob": _rayjob_status(CLUSTER, "Complete", "SUCCEEDED")}

    monkeypatch.setattr(lifecycle, "wait_sync", wait_sync)
    op.execute({"ti": ti})
    assert seen_while_running == [_proxy(f"{CLUSTER}-head-svc")]


# -- rendered by Airflow from the metadata DB -----------------------------------------------------------------
@pytest.fixture(scope="module")
def metadata_db():
    from airflow.utils import db

    db.initdb()
    return True


def _dag_run(op: RayJobOperator) -> tuple[Any, Any, Any]:
    """A running DagRun of a DAG holding ``op``: (the task Airflow renders links with, the task instance, run)."""
    now = pendulum.now("UTC")
    dag_id = f"links_{uuid.uuid4().hex[:8]}"
    if AIRFLOW_2:
        from airflow.models.dag import DAG
        from airflow.utils.types import DagRunType

        dag = DAG(dag_id, start_date=now.subtract(days=1), schedule=None)
        dag.add_task(op)
        dag.sync_to_db()
        run = dag.create_dagrun(run_id=f"manual__{now.isoformat()}", state="running", execution_date=now,
                                run_type=DagRunType.MANUAL, data_interval=(now, now))
        return op, run.get_task_instance(op.task_id), run
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
    from airflow.models.dagbag import DBDagBag
    from airflow.sdk import DAG
    from airflow.utils.session import create_session
    from airflow.utils.types import DagRunTriggeredByType, DagRunType

    dag = DAG(dag_id, start_date=now.subtract(days=1), schedule=None)
    dag.add_task(op)
    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(collect_dags=False)
    bag.bag_dag(dag)
    sync_bag_to_db(bag, "dags-folder", None)
    with create_session() as session:
        serialized = DBDagBag().get_latest_version_of_dag(dag_id, session=session)
        run = serialized.create_dagrun(run_id=f"manual__{now.isoformat()}", logical_date=now,
                                       data_interval=(now, now), run_after=now, run_type=DagRunType.MANUAL,
                                       triggered_by=DagRunTriggeredByType.TEST, state="running", session=session)
        ti = run.get_task_instance(op.task_id, session=session)
        session.expunge_all()
    return serialized.get_task(op.task_id), ti, run


def _store(ti: Any, pushed: dict[str, Any]) -> None:
    """Write the operator's pushes as XCom rows of ``ti`` (what ``ti.xcom_push`` does in a worker)."""
    from airflow.utils.session import create_session

    from tests.integration.airflow_support import xcom_model

    with create_session() as session:
        for key, value in pushed.items():
            xcom_model().set(key=key, value=value, dag_id=ti.dag_id, task_id=ti.task_id, run_id=ti.run_id,
                             map_index=ti.map_index, session=session)


def _rendered(task: Any, ti: Any) -> dict[str, str]:
    return {name: task.get_extra_links(ti, name) for name in LINK_NAMES}


def test_airflow_renders_every_link_for_a_running_and_a_finished_task(monkeypatch, metadata_db):
    op, pushes, deferral = _deferred(monkeypatch)
    task, ti, _ = _dag_run(op)
    assert not any(_rendered(task, ti).values())  # nothing stored yet: no link
    _store(ti, pushes.pushed)  # running: deferred, the job not finished
    running = _rendered(task, ti)
    assert running["Ray Dashboard"] == _proxy(f"{RAYJOB}-head-svc")
    assert running["Cloud Logging"].startswith("https://console.cloud.google.com/logs/query;query=")
    assert running["GKE workload"].startswith("https://console.cloud.google.com/kubernetes/workload/overview")
    event = {"status": "success", "message": "done", "name": RAYJOB, "namespace": NAMESPACE,
             "rayjob": _rayjob_status(CLUSTER, "Complete", "SUCCEEDED")}
    op.execute_complete({"ti": pushes}, event, **deferral.kwargs)
    _store(ti, pushes.pushed)  # finished
    finished = _rendered(task, ti)
    assert finished["Ray Dashboard"] == _proxy(f"{CLUSTER}-head-svc")
    assert finished["Cloud Logging"] == running["Cloud Logging"] and finished["GKE workload"] == running["GKE workload"]
    assert not any("svc.cluster.local" in url or "token" in url for url in finished.values())
