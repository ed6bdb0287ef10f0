"""A local stand-in for the Kubeflow spark-operator (v1beta2 ``SparkApplication``) that runs each application with a
local ``spark-submit --master local[N]``.

What it reproduces, as the real operator writes it (state machine of spark-operator v2's reconciler):

* ``status.applicationState.state``: ``""`` -> ``SUBMITTED`` (driver pod created) -> ``RUNNING`` (driver container
  running) -> ``SUCCEEDING`` -> ``COMPLETED``, or ``FAILING`` -> ``FAILED`` with ``errorMessage`` ``driver container
  failed with ExitCode: N, Reason: Error``; an unsubmittable spec goes ``SUBMISSION_FAILED`` -> ``FAILED``;
  ``driverInfo.podName``, ``sparkApplicationId``, ``submissionID``, ``lastSubmissionAttemptTime``,
  ``submissionAttempts``, ``executionAttempts``, ``terminationTime``.
* The driver Pod ``<app>-driver`` with container ``spark-kubernetes-driver``, the labels Spark and the operator put on
  it (``spark-role=driver``, ``spark-app-name``, ``spark-app-selector``, ``spark-version``,
  ``sparkoperator.k8s.io/app-name``, ``sparkoperator.k8s.io/submission-id``,
  ``sparkoperator.k8s.io/launched-by-spark-operator``, plus ``spec.driver.labels``), a controller ownerReference to
  the application, a pod status mirroring the process (Pending -> Running -> Succeeded/Failed with the container's
  exit code) and the process's stdout/stderr served as the container log.
* Deleting the application kills the process group and deletes the driver pod; ``spec.timeToLiveSeconds`` deletes a
  finished application.

At most ``max_running`` applications run at once; the others stay ``SUBMITTED`` with an unschedulable driver pod, as
on a cluster without room for another driver. There are no executor pods (``local[N]`` runs the executors inside the
driver JVM), so ``status.executorState`` stays empty.
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import datetime as dt
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kuberay_provider.local import pods
from kuberay_provider.local.apiserver import now_iso
from kuberay_provider.local.kube import Kube, KubeError, owner_reference
from kuberay_provider.local.loops import ReconcileLoops
from kuberay_provider.local.podlogs import CRILogWriter
from kuberay_provider.local.sparksubmit import (
    SparkProcess,
    SubmissionError,
    build_command,
    kill_session,
    local_cores,
    process_env,
    session_pids,
    validate,
)

JSON = dict[str, Any]
log = logging.getLogger(__name__)

GROUP = "sparkoperator.k8s.io"
VERSION = "v1beta2"
PLURAL = "sparkapplications"
KIND = "SparkApplication"
DRIVER_CONTAINER = "spark-kubernetes-driver"
COMPONENT = "spark-operator"
APP_NAME_LABEL = f"{GROUP}/app-name"
LAUNCHED_LABEL = f"{GROUP}/launched-by-spark-operator"
SUBMISSION_LABEL = f"{GROUP}/submission-id"
# spark-operator's application states.
NEW, SUBMITTED, RUNNING = "", "SUBMITTED", "RUNNING"
SUCCEEDING, COMPLETED, FAILING, FAILED = "SUCCEEDING", "COMPLETED", "FAILING", "FAILED"
SUBMISSION_FAILED = "SUBMISSION_FAILED"
TERMINAL = (COMPLETED, FAILED)
RegisterLog = Callable[..., None]


class SparkKube(Kube):
    """The controller's HTTP client, also knowing the ``sparkapplications`` collection."""

    def url(self, plural: str, namespace: str | None = None, name: str | None = None, sub: str | None = None) -> str:
        """The REST URL of a collection or object."""
        if plural != PLURAL:
            return super().url(plural, namespace, name, sub)
        parts = [self.base_url + f"/apis/{GROUP}/{VERSION}"]
        if namespace is not None:
            parts.append(f"namespaces/{namespace}")
        parts += [p for p in (PLURAL, name, sub) if p is not None]
        return "/".join(parts)


@dataclass
class SparkRun:
    """One submitted application: its driver pod and, once it got a slot, its local process."""

    uid: str
    namespace: str
    name: str
    pod_name: str
    seq: int
    spec: JSON
    app_id: str
    work_dir: Path
    process: SparkProcess | None = None


def _state(app: JSON) -> str:
    return ((app.get("status") or {}).get("applicationState") or {}).get("state", NEW)


def driver_labels(app: JSON, submission_id: str, app_id: str) -> dict[str, str]:
    """Labels of the driver pod: ``spec.driver.labels`` plus what spark-submit and the operator add."""
    spec, name = app.get("spec") or {}, app["metadata"]["name"]
    labels = {str(k): str(v) for k, v in ((spec.get("driver") or {}).get("labels") or {}).items()}
    labels.update({"spark-role": "driver", "spark-app-name": name, "spark-app-selector": app_id,
                   "spark-version": str(spec.get("sparkVersion", "")), APP_NAME_LABEL: name,
                   SUBMISSION_LABEL: submission_id, LAUNCHED_LABEL: "true"})
    return labels


def driver_pod_spec(spec: JSON, argv: list[str]) -> JSON:
    """A pod spec describing the driver as spark-submit would build it (the command is what runs locally)."""
    driver = spec.get("driver") or {}
    env = [e for e in driver.get("env") or [] if isinstance(e, dict)]
    env += [{"name": k, "value": str(v)} for k, v in (driver.get("envVars") or {}).items()]
    resources: JSON = {"requests": {"cpu": str(local_cores(spec))}}
    if driver.get("memory"):
        resources["requests"]["memory"] = str(driver["memory"])
    container = {"name": DRIVER_CONTAINER, "image": driver.get("image") or spec.get("image") or "spark:local",
                 "command": argv[:1], "args": argv[1:], "env": env, "resources": resources,
                 "ports": [{"name": "driver-rpc-port", "containerPort": 7078, "protocol": "TCP"}]}
    pod_spec: JSON = {"containers": [container], "restartPolicy": "Never"}
    if driver.get("serviceAccount"):
        pod_spec["serviceAccountName"] = driver["serviceAccount"]
    return pod_spec


class SparkApplicationController:
    """Watches SparkApplications on the local API server and runs them with local ``spark-submit``.

    Talks to the API server over HTTP only (User-Agent ``kuberay-local-controller``, exempt from injected faults).
    """

    def __init__(self, api_url: str, base_dir: Path, register_log: RegisterLog, *, requeue_seconds: float = 1.0,
                 max_running: int = 1) -> None:
        if max_running < 1:
            raise ValueError("max_running must be >= 1")
        self.kube = SparkKube(api_url)
        self.base_dir = Path(base_dir) / "spark"
        self.register_log = register_log
        self.requeue_seconds = requeue_seconds
        self.max_running = max_running
        self.runs: dict[str, SparkRun] = {}
        self.sessions: set[int] = set()  # every spark-submit session ever started (leftover checks)
        self._seq = 0
        self.loops = ReconcileLoops(self.kube, (PLURAL, "pods"), self.reconcile_once, requeue_seconds=requeue_seconds,
                                    name="spark-operator")

    # ----------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        """Open the client and start the watch and reconcile loops."""
        await self.kube.open()
        self.loops.start()
        atexit.register(self.kill_all_now)

    async def stop(self) -> None:
        """Stop the loops and kill every Spark process (the API objects die with the server)."""
        await self.loops.stop()
        for run in list(self.runs.values()):
            if run.process is not None:
                await run.process.kill()
        self.runs.clear()
        await self.kube.close()
        atexit.unregister(self.kill_all_now)

    def kill_all_now(self) -> None:
        """Last resort at interpreter exit: SIGKILL every Spark process tree this controller started."""
        for sid in self.sessions:
            kill_session(sid)

    def running(self) -> dict[tuple[str, str], list[int]]:
        """``{(namespace, app): [pids]}`` of the Spark processes running now."""
        return {(r.namespace, r.name): session_pids(r.process.pid) for r in self.runs.values()
                if r.process is not None and r.process.pid is not None and not r.process.done}

    def leftover_pids(self) -> list[int]:
        """Live processes of any Spark run this controller ever started (empty once all are finished or killed)."""
        return sorted({pid for sid in self.sessions for pid in session_pids(sid)})

    # ----------------------------------------------------------------- loops
    async def reconcile_once(self) -> None:
        """Reconcile every SparkApplication, tear down deleted ones, then start queued ones while slots are free."""
        apps = await self.kube.list(PLURAL)
        by_uid = {a["metadata"]["uid"]: a for a in apps}
        for uid in [u for u in self.runs if u not in by_uid]:
            await self._teardown(self.runs.pop(uid))
        drivers = await self.kube.list("pods", label_selector=f"{LAUNCHED_LABEL}=true")
        for pod in drivers:
            owners = {r.get("uid") for r in pod["metadata"].get("ownerReferences") or [] if r.get("kind") == KIND}
            if owners and not owners & by_uid.keys() and not pod["metadata"].get("deletionTimestamp"):
                await self.kube.delete("pods", pod["metadata"]["namespace"], pod["metadata"]["name"])
        for app in sorted(apps, key=lambda a: (a["metadata"].get("creationTimestamp", ""), a["metadata"]["name"])):
            try:
                await self.reconcile(app)
            except KubeError as err:
                log.info("sparkapplication %s: %s", app["metadata"]["name"], err)
        await self._start_queued(by_uid)

    # ----------------------------------------------------------------- one application
    async def reconcile(self, app: JSON) -> None:
        """Move one application along spark-operator's state machine."""
        meta = app["metadata"]
        run = self.runs.get(meta["uid"])
        if meta.get("deletionTimestamp"):
            if run is not None:
                await self._teardown(self.runs.pop(meta["uid"]))
            await self._drop_finalizers(app)
            return
        state = _state(app)
        if state == NEW:
            await self._submit(app)
        elif state in (SUBMITTED, RUNNING):
            await self._sync_running(app, run)
        elif state in TERMINAL:
            await self._expire(app)

    async def _submit(self, app: JSON) -> None:
        meta, spec = app["metadata"], app.get("spec") or {}
        ns, name = meta["namespace"], meta["name"]
        submission_id, pod_name = str(uuid.uuid4()), f"{name}-driver"
        status: JSON = {"submissionID": submission_id, "lastSubmissionAttemptTime": now_iso(),
                        "submissionAttempts": 1, "driverInfo": {"podName": pod_name}}
        errors = validate(spec)
        app_id = f"spark-{uuid.uuid4().hex}"
        work_dir = self.base_dir / ns / f"{name}-{meta['uid'][:8]}"
        argv: list[str] = []
        if not errors:
            try:
                argv = build_command(spec, app_name=name, app_id=app_id, work_dir=work_dir)
            except SubmissionError as err:
                errors = [str(err)]
        if errors:
            message = "failed to submit spark application: " + "; ".join(errors)
            await self._set_status(app, {**status, "applicationState": {"state": SUBMISSION_FAILED,
                                                                        "errorMessage": message}})
            await self._event(app, "Warning", "SparkApplicationSubmissionFailed", message)
            await self._set_status(app, {**status, "terminationTime": now_iso(),
                                         "applicationState": {"state": FAILED, "errorMessage": message}})
            await self._event(app, "Warning", "SparkApplicationFailed", message)
            return
        pod = pods.pod_object(pod_name, ns, driver_labels(app, submission_id, app_id), owner_reference(app),
                              driver_pod_spec(spec, argv))
        pod["metadata"]["annotations"] = {"kuberay-local/work-dir": str(work_dir)}
        try:
            pod = await self.kube.create("pods", ns, pod)
        except KubeError as err:
            if err.status != 409:
                raise
            pod = await self.kube.get("pods", ns, pod_name) or pod
        # A driver that has to wait for a free slot looks like a pod the scheduler cannot place yet.
        waiting = pods.waiting(pod, "ContainerCreating") if len(self.runs) < self.max_running else pods.unschedulable(pod)
        await self.kube.set_status("pods", ns, pod_name, waiting)
        work_dir.mkdir(parents=True, exist_ok=True)
        log_path = work_dir / "driver.log"
        CRILogWriter(log_path)
        self.register_log(ns, pod_name, DRIVER_CONTAINER, log_path, cri=True)
        self._seq += 1
        self.runs[meta["uid"]] = SparkRun(meta["uid"], ns, name, pod_name, self._seq, copy.deepcopy(spec), app_id,
                                          work_dir)
        await self._set_status(app, {**status, "sparkApplicationId": app_id, "executionAttempts": 1,
                                     "applicationState": {"state": SUBMITTED}})
        await self._event(app, "Normal", "SparkApplicationSubmitted",
                          f"SparkApplication {name} was submitted successfully")

    async def _start_queued(self, by_uid: dict[str, JSON]) -> None:
        busy = sum(1 for r in self.runs.values() if r.process is not None and not r.process.done)
        for run in sorted((r for r in self.runs.values() if r.process is None), key=lambda r: r.seq):
            if busy >= self.max_running:
                return
            app = by_uid.get(run.uid)
            if app is None or _state(app) != SUBMITTED:
                continue
            await self._start(app, run)
            busy += 1

    async def _start(self, app: JSON, run: SparkRun) -> None:
        pod = await self.kube.get("pods", run.namespace, run.pod_name)
        if pod is None:
            return  # _sync_running fails the application on the next pass
        await self.kube.set_status("pods", run.namespace, run.pod_name, pods.waiting(pod, "ContainerCreating"))
        argv = build_command(run.spec, app_name=run.name, app_id=run.app_id, work_dir=run.work_dir)
        process = SparkProcess(argv, process_env(run.spec, run.work_dir), run.work_dir,
                               CRILogWriter(run.work_dir / "driver.log"), on_exit=self.loops.wake)
        run.process = process
        try:
            await process.start()
        except OSError as err:
            process.log.write("stderr", f"failed to start spark-submit: {err}".encode())
            process.exit_code = 127
            self.loops.wake()
            return
        if process.pid is not None:
            self.sessions.add(process.pid)
        pod = await self.kube.get("pods", run.namespace, run.pod_name) or pod
        await self.kube.set_status("pods", run.namespace, run.pod_name, pods.running(pod))
        status = copy.deepcopy(app.get("status") or {})
        status["applicationState"] = {"state": RUNNING}
        await self._set_status(app, status)
        await self._event(app, "Normal", "SparkDriverRunning", f"Driver {run.pod_name} is running")

    async def _sync_running(self, app: JSON, run: SparkRun | None) -> None:
        status = copy.deepcopy(app.get("status") or {})
        pod_name = (status.get("driverInfo") or {}).get("podName") or f"{app['metadata']['name']}-driver"
        pod = await self.kube.get("pods", app["metadata"]["namespace"], pod_name)
        if pod is None or run is None:
            if run is not None:
                await self._teardown(self.runs.pop(app["metadata"]["uid"]))
            await self._terminate(app, status, FAILING, FAILED, "driver pod not found")
            return
        if run.process is None or not run.process.done:
            return
        code = run.process.exit_code or 0
        self.runs.pop(app["metadata"]["uid"], None)
        await self.kube.set_status("pods", run.namespace, run.pod_name, pods.terminated(pod, code))
        if code == 0:
            await self._event(app, "Normal", "SparkDriverCompleted", f"Driver {pod_name} completed")
            await self._terminate(app, status, SUCCEEDING, COMPLETED, None)
        else:
            message = f"driver container failed with ExitCode: {code}, Reason: Error"
            await self._event(app, "Warning", "SparkDriverFailed", f"Driver {pod_name} failed: {message}")
            await self._terminate(app, status, FAILING, FAILED, message)

    async def _terminate(self, app: JSON, status: JSON, transient: str, final: str, message: str | None) -> None:
        state: JSON = {"state": transient}
        if message:
            state["errorMessage"] = message
        status.update(applicationState=state, terminationTime=now_iso())
        await self._set_status(app, status)
        status["applicationState"] = {**state, "state": final}
        await self._set_status(app, status)
        reason = "SparkApplicationCompleted" if final == COMPLETED else "SparkApplicationFailed"
        await self._event(app, "Normal" if final == COMPLETED else "Warning", reason,
                          f"SparkApplication {app['metadata']['name']} {final.lower()}" + (f": {message}" if message
                                                                                           else ""))

    async def _expire(self, app: JSON) -> None:
        ttl = (app.get("spec") or {}).get("timeToLiveSeconds")
        ended = (app.get("status") or {}).get("terminationTime")
        if ttl is None or not ended:
            return
        ended_at = dt.datetime.strptime(ended, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
        if (dt.datetime.now(dt.UTC) - ended_at).total_seconds() >= float(ttl):
            await self.kube.delete(PLURAL, app["metadata"]["namespace"], app["metadata"]["name"])

    async def _teardown(self, run: SparkRun) -> None:
        """Kill the run's process group and delete its driver pod."""
        if run.process is not None:
            await run.process.kill()
        await self.kube.delete("pods", run.namespace, run.pod_name)

    async def _drop_finalizers(self, app: JSON) -> None:
        """Finish a Foreground/Orphan deletion once the driver is gone (the KubeRay GC ignores this kind)."""
        meta = app["metadata"]
        remaining = [f for f in meta.get("finalizers") or [] if f not in ("foregroundDeletion", "orphan")]
        if remaining != list(meta.get("finalizers") or []):
            await self.kube.delete("pods", meta["namespace"], f"{meta['name']}-driver")
            await self.kube.patch(PLURAL, meta["namespace"], meta["name"],
                                  {"metadata": {"finalizers": remaining or None}})

    async def _set_status(self, app: JSON, status: JSON) -> None:
        meta = app["metadata"]
        updated = await self.kube.set_status(PLURAL, meta["namespace"], meta["name"], status)
        app["status"] = updated.get("status")

    async def _event(self, app: JSON, event_type: str, reason: str, message: str) -> None:
        with contextlib.suppress(KubeError):
            await self.kube.event(app, event_type, reason, message, COMPONENT)
