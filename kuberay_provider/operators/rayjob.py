"""RayJobOperator: one transient Ray cluster per task, waited for without holding a worker slot.

Importing this module is cheap: the Kubernetes clients, the hooks and the trigger are imported inside the
methods that use them, because Airflow parses DAG files again and again.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from kuberay_provider import constants as c
from kuberay_provider import specs
from kuberay_provider.compat import AirflowException, BaseOperator, conf
from kuberay_provider.errors import InvalidParameterError
from kuberay_provider.lifecycle import CLEANUP_POLICIES, ON_EXISTING, delete_after, plan_existing
from kuberay_provider.links import DASHBOARD_XCOM_KEY, RayDashboardLink, dashboard_link
from kuberay_provider.naming import (
    TaskInstanceIdentity,
    label_selector,
    validate_labels,
    validate_namespace,
    validate_raycluster_name,
    validate_rayjob_name,
    validate_seconds,
)
from kuberay_provider.outcome import (
    SUCCESS,
    error_event,
    failure_report,
    final_status,
    outcome_event,
    succeeded,
    xcom_summary,
)
from kuberay_provider.params import check_conn_id, is_templated
from kuberay_provider.status import RayJobStatus

if TYPE_CHECKING:
    from kuberay_provider.compat import Context
    from kuberay_provider.hooks.kuberay import KubeRayHook

DEFAULT_IMAGE = "rayproject/ray:2.60.0-py311"
LOG_DRAIN_SECONDS = 15.0
DEFERRAL_GRACE_SECONDS = 120


class RayJobOperator(BaseOperator):
    """Run ``entrypoint`` on a transient Ray cluster created by a KubeRay ``RayJob``; delete it afterwards.

    The cluster is described compactly (``image``, ``head``, ``worker_groups``) or by a full RayJob
    ``manifest`` (dict, YAML string or templated ``.yaml`` file) into which the provider merges its name,
    labels and safe defaults. The task waits for the job in the triggerer (``deferrable=True``) or in the
    worker, streams the driver log into the task log, succeeds only on ``Complete`` + ``SUCCEEDED``, and
    deletes the RayJob (so its cluster) on failure, timeout and kill.

    :param entrypoint: shell command run by ``ray job submit`` (e.g. ``python train.py``).
    :param image: Ray image for head and workers (a group may override it).
    :param head: head resources, e.g. ``{"cpu": 2, "memory": "8Gi"}``.
    :param worker_groups: e.g. ``[{"name": "cpu", "replicas": 2, "cpu": 4, "memory": "16Gi"}]``; set
        ``min_replicas``/``max_replicas`` to enable autoscaling; ``gpus`` and ``resources`` for accelerators.
    :param runtime_env: Ray runtime_env mapping (or YAML string).
    :param manifest: a full RayJob manifest instead of the compact parameters.
    :param name: RayJob name; default: deterministic from dag_id, task_id, run_id, map_index and try.
    :param namespace: Kubernetes namespace (default: the connection's, else ``default``).
    :param secret_env: credentials for the job as Kubernetes Secret references, ``{"ENV": "secret-name:key"}``;
        they reach every Ray container through ``secretKeyRef`` and never appear in the spec. Literal values for
        credential-looking variables (``*PASSWORD*``, ``*TOKEN*``, ``*SECRET*``, ``*API_KEY*``…) are refused.
    :param cluster_selector: name of an existing RayCluster to run on instead of creating one.
    :param on_existing: a still-running RayJob of an earlier try: ``reattach`` (default), ``replace`` or ``fail``.
    :param cleanup_policy: ``on_failure`` (default), ``always`` or ``keep_failed``; see
        :func:`kuberay_provider.lifecycle.delete_after`.
    :param deferrable: wait in the triggerer; default ``[operators] default_deferrable``.
    :param timeout: seconds to wait for the job; default: the task's ``execution_timeout``.
    :param wait_for_completion: if False, return once the RayJob is created.
    :param stream_logs: copy the driver log into the task log while the job runs.
    :param dashboard_url_template: how to turn a cluster into a browser URL for the extra link, using
        ``{namespace}``, ``{cluster}`` and ``{dashboard_url}``; default ``http://<status.dashboardURL>``.
    """

    template_fields: Sequence[str] = (
        "entrypoint", "image", "head", "worker_groups", "runtime_env", "manifest", "name", "namespace",
        "labels", "annotations", "cluster_selector", "job_id", "service_account",
    )
    template_ext: Sequence[str] = (".yaml", ".yml")
    template_fields_renderers = {"manifest": "yaml", "runtime_env": "json", "head": "json", "worker_groups": "json"}
    ui_color = "#028bbd"
    operator_extra_links = (RayDashboardLink(),)

    def __init__(
        self,
        *,
        entrypoint: str | None = None,
        image: str = DEFAULT_IMAGE,
        head: Mapping[str, Any] | None = None,
        worker_groups: Sequence[Mapping[str, Any]] | None = None,
        runtime_env: Mapping[str, Any] | str | None = None,
        manifest: Mapping[str, Any] | str | None = None,
        name: str | None = None,
        namespace: str | None = None,
        kubernetes_conn_id: str = "kubernetes_default",
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
        service_account: str | None = None,
        node_selector: Mapping[str, str] | None = None,
        tolerations: Sequence[Mapping[str, Any]] | None = None,
        image_pull_secrets: Sequence[str] | None = None,
        secret_env: Mapping[str, Any] | None = None,
        ray_version: str | None = None,
        submission_mode: str = specs.DEFAULT_SUBMISSION_MODE,
        shutdown_after_job_finishes: bool = True,
        ttl_seconds_after_finished: int = specs.DEFAULT_TTL_SECONDS_AFTER_FINISHED,
        backoff_limit: int = specs.DEFAULT_BACKOFF_LIMIT,
        pre_running_deadline_seconds: int | None = specs.DEFAULT_PRE_RUNNING_DEADLINE_SECONDS,
        active_deadline_seconds: int | None = None,
        job_id: str | None = None,
        entrypoint_num_cpus: float | None = None,
        entrypoint_num_gpus: float | None = None,
        cluster_selector: str | None = None,
        on_existing: str = "reattach",
        cleanup_policy: str = "on_failure",
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        timeout: float | None = None,
        wait_for_completion: bool = True,
        stream_logs: bool = True,
        log_tail_lines: int = 50,
        dashboard_url_template: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.entrypoint = entrypoint
        self.image = image
        self.head = head
        self.worker_groups = worker_groups if worker_groups is not None else []
        self.runtime_env = runtime_env
        self.manifest = manifest
        self.name = name
        self.namespace = namespace
        self.kubernetes_conn_id = kubernetes_conn_id
        self.labels = dict(labels or {})
        self.annotations = dict(annotations or {})
        self.service_account = service_account
        # Kept as given (not coerced with dict()/list(), which would split a string): validated when the spec is built.
        self.node_selector = node_selector if node_selector is not None else {}
        self.tolerations = tolerations if tolerations is not None else []
        self.image_pull_secrets = image_pull_secrets if image_pull_secrets is not None else []
        self.secret_env = secret_env
        self.ray_version = ray_version
        self.submission_mode = submission_mode
        self.shutdown_after_job_finishes = shutdown_after_job_finishes
        self.ttl_seconds_after_finished = ttl_seconds_after_finished
        self.backoff_limit = backoff_limit
        self.pre_running_deadline_seconds = pre_running_deadline_seconds
        self.active_deadline_seconds = active_deadline_seconds
        self.job_id = job_id
        self.entrypoint_num_cpus = entrypoint_num_cpus
        self.entrypoint_num_gpus = entrypoint_num_gpus
        self.cluster_selector = cluster_selector
        self.on_existing = on_existing
        self.cleanup_policy = cleanup_policy
        self.deferrable = deferrable
        self.timeout = timeout
        self.wait_for_completion = wait_for_completion
        self.stream_logs = stream_logs
        self.log_tail_lines = log_tail_lines
        self.dashboard_url_template = dashboard_url_template
        self._rayjob_name: str | None = None
        self._rayjob_namespace: str | None = None
        self._validate_static()

    # -- validation --------------------------------------------------------------------------------------
    def _validate_static(self) -> None:
        """Checks that need no rendering, done when the DAG is parsed (before anything is created)."""
        if self.on_existing not in ON_EXISTING:
            raise InvalidParameterError("on_existing", self.on_existing, f"must be one of {list(ON_EXISTING)}")
        if self.cleanup_policy not in CLEANUP_POLICIES:
            raise InvalidParameterError("cleanup_policy", self.cleanup_policy, f"must be one of {list(CLEANUP_POLICIES)}")
        if self.manifest is None and not self.entrypoint and self.submission_mode != "InteractiveMode":
            raise InvalidParameterError("entrypoint", self.entrypoint, "is required unless a full manifest is given")
        if self.timeout is not None:
            validate_seconds(self.timeout, "timeout")
        if isinstance(self.log_tail_lines, bool) or not isinstance(self.log_tail_lines, int) or self.log_tail_lines < 0:
            raise InvalidParameterError("log_tail_lines", self.log_tail_lines, "must be an integer ≥ 0")
        for flag in ("deferrable", "wait_for_completion", "stream_logs"):
            if not isinstance(getattr(self, flag), bool):
                raise InvalidParameterError(flag, getattr(self, flag), "must be True or False")
        check_conn_id(self.kubernetes_conn_id)
        if self.dashboard_url_template is not None:
            self._check_dashboard_template()
        self._job_settings()  # submission mode, TTL, deadlines, runtime_env
        if self.name and not is_templated(self.name):
            validate_rayjob_name(self.name, "name")
        if self.namespace and not is_templated(self.namespace):
            validate_namespace(self.namespace)
        if not is_templated(self.labels):
            validate_labels(self.labels)
        if self.cluster_selector is not None and not is_templated(self.cluster_selector):
            validate_raycluster_name(self.cluster_selector, "cluster_selector")
        if self.secret_env and (self.cluster_selector or self._manifest_selects_a_cluster()):
            raise InvalidParameterError(
                "secret_env", sorted(self.secret_env), "cannot be used with cluster_selector: this task creates no "
                "Ray pods; give the shared cluster's pods the Secret references instead",
            )
        specs.parse_secret_env(self.secret_env)
        if self.manifest is None and not is_templated([self.head, self.worker_groups, self.image]):
            self._cluster_spec()
        if self.manifest is not None and not is_templated(self.manifest) and not self._manifest_is_template_file():
            specs.load_manifest(self.manifest)
        if not is_templated([self.entrypoint, self.manifest, self.head, self.worker_groups, self.image, self.runtime_env,
                             self.labels, self.annotations, self.cluster_selector, self.job_id, self.service_account]) \
                and not self._manifest_is_template_file():
            # Everything is known now: build against a placeholder identity so every KubeRay rule is checked
            # when the DAG is parsed, not when the task runs.
            placeholder = TaskInstanceIdentity(dag_id="dag", task_id="task", run_id="run")
            saved = self.name
            if self.name is not None and is_templated(self.name):
                self.name = None
            try:
                namespace = c.DEFAULT_NAMESPACE if is_templated(self.namespace) else self.namespace
                self.build_manifest(placeholder, namespace=namespace)
            finally:
                self.name = saved

    def _check_dashboard_template(self) -> None:
        template = self.dashboard_url_template
        try:
            if not isinstance(template, str):
                raise TypeError
            url = template.format(namespace="ns", cluster="cluster", dashboard_url="host:8265")
        except (KeyError, IndexError, ValueError, TypeError):
            raise InvalidParameterError(
                "dashboard_url_template", template, "must be a string using only {namespace}, {cluster} and {dashboard_url}"
            ) from None
        if not url.startswith(("http://", "https://")):
            raise InvalidParameterError("dashboard_url_template", template, "must produce an http:// or https:// URL")

    def _manifest_selects_a_cluster(self) -> bool:
        if self.manifest is None or is_templated(self.manifest) or self._manifest_is_template_file():
            return False
        return bool((specs.load_manifest(self.manifest).get("spec") or {}).get("clusterSelector"))

    def _manifest_is_template_file(self) -> bool:
        return isinstance(self.manifest, str) and self.manifest.strip().endswith(tuple(self.template_ext))

    def _job_settings(self, active_deadline: int | None = None) -> specs.JobSettings:
        if self.submission_mode not in specs.SUBMISSION_MODES:
            raise InvalidParameterError(
                "submission_mode", self.submission_mode,
                f"must be one of {list(specs.SUBMISSION_MODES)} (KubeRay accepts typos and then never finishes)",
            )
        if not isinstance(self.shutdown_after_job_finishes, bool):
            raise InvalidParameterError("shutdown_after_job_finishes", self.shutdown_after_job_finishes, "must be a bool")
        for param, value, minimum, optional in (
            ("ttl_seconds_after_finished", self.ttl_seconds_after_finished, 0, False),
            ("backoff_limit", self.backoff_limit, 0, False),
            ("pre_running_deadline_seconds", self.pre_running_deadline_seconds, 1, True),
            ("active_deadline_seconds", self.active_deadline_seconds, 1, True),
        ):
            if value is None and optional:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise InvalidParameterError(param, value, f"must be an integer ≥ {minimum}")
        if self.ttl_seconds_after_finished > 0 and not self.shutdown_after_job_finishes:
            raise InvalidParameterError(
                "ttl_seconds_after_finished", self.ttl_seconds_after_finished,
                "requires shutdown_after_job_finishes=True (KubeRay rejects a TTL without it)",
            )
        if not is_templated(self.runtime_env):
            specs.runtime_env_yaml(self.runtime_env)
        return specs.JobSettings(
            entrypoint=self.entrypoint,
            runtime_env=self.runtime_env,
            submission_mode=self.submission_mode,
            shutdown_after_job_finishes=self.shutdown_after_job_finishes,
            ttl_seconds_after_finished=self.ttl_seconds_after_finished,
            backoff_limit=self.backoff_limit,
            pre_running_deadline_seconds=self.pre_running_deadline_seconds,
            active_deadline_seconds=self.active_deadline_seconds or active_deadline,
            job_id=self.job_id,
            entrypoint_num_cpus=self.entrypoint_num_cpus,
            entrypoint_num_gpus=self.entrypoint_num_gpus,
            cluster_selector={c.RAY_CLUSTER_LABEL: self.cluster_selector} if self.cluster_selector else None,
        )

    def _cluster_spec(self) -> dict[str, Any] | None:
        if self.cluster_selector:
            return None
        if not isinstance(self.image, str) or not self.image.strip() or any(ch.isspace() for ch in self.image):
            raise InvalidParameterError("image", self.image, "must be a container image reference without spaces")
        if not isinstance(self.worker_groups, (list, tuple)):
            raise InvalidParameterError("worker_groups", self.worker_groups, "must be a list of mappings")
        head = specs.NodeGroup.parse(self.head, "head", worker=False)
        workers = [specs.NodeGroup.parse(g, f"worker_groups[{i}]", worker=True) for i, g in enumerate(self.worker_groups)]
        names = [w.name for w in workers]
        if len(set(names)) != len(names):
            raise InvalidParameterError("worker_groups", names, "group names must be unique")
        pod = specs.PodSettings(
            image=self.image, service_account=self.service_account, node_selector=self.node_selector,
            tolerations=self.tolerations, image_pull_secrets=self.image_pull_secrets,
            secret_env=specs.parse_secret_env(self.secret_env),
        )
        return specs.build_ray_cluster_spec(head=head, worker_groups=workers, pod=pod, ray_version=self.ray_version)

    # -- building ------------------------------------------------------------------------------------------
    def _active_deadline_from_timeout(self) -> int | None:
        seconds = self.timeout or (self.execution_timeout.total_seconds() if self.execution_timeout else None)
        return max(1, math.ceil(seconds)) if seconds else None

    def build_manifest(self, identity: TaskInstanceIdentity, namespace: str | None = None) -> dict[str, Any]:
        """The RayJob this task creates (pure given the rendered parameters); validated before returning."""
        name = self.name or identity.rayjob_name()
        namespace = namespace or self.namespace or c.DEFAULT_NAMESPACE
        labels = {**self.labels, **identity.labels()}
        annotations = {**self.annotations, **identity.annotations()}
        job = self._job_settings(self._active_deadline_from_timeout())
        if self.manifest is not None:
            user = specs.load_manifest(self.manifest)
            defaults = {k: v for k, v in job.to_spec().items() if k in (
                "submissionMode", "shutdownAfterJobFinishes", "ttlSecondsAfterFinished", "backoffLimit",
                "preRunningDeadlineSeconds", "activeDeadlineSeconds")}
            if self.entrypoint:
                user["spec"]["entrypoint"] = self.entrypoint
            if self.secret_env:
                if user["spec"].get("clusterSelector") or not isinstance(user["spec"].get("rayClusterSpec"), dict):
                    raise InvalidParameterError("secret_env", sorted(self.secret_env),
                                                "needs a manifest with a rayClusterSpec (this task's own Ray pods)")
                user["spec"]["rayClusterSpec"] = specs.add_secret_env(
                    user["spec"]["rayClusterSpec"], specs.parse_secret_env(self.secret_env))
            manifest = specs.merge_required_fields(
                user, name=name, namespace=namespace, labels=labels, annotations=annotations, defaults=defaults
            )
        else:
            manifest = specs.build_rayjob(
                name=name, namespace=namespace, job=job, cluster_spec=self._cluster_spec(),
                labels=labels, annotations=annotations,
            )
        specs.validate_rayjob(manifest)
        return manifest

    @staticmethod
    def identity_from_context(context: Context) -> TaskInstanceIdentity:
        ti = context["ti"]
        return TaskInstanceIdentity(
            dag_id=ti.dag_id,
            task_id=ti.task_id,
            run_id=ti.run_id,
            map_index=getattr(ti, "map_index", -1) if getattr(ti, "map_index", -1) is not None else -1,
            try_number=int(getattr(ti, "try_number", 1) or 1),
        )

    # -- execution -----------------------------------------------------------------------------------------
    def hook(self) -> KubeRayHook:
        from kuberay_provider.hooks.kuberay import KubeRayHook

        return KubeRayHook(kubernetes_conn_id=self.kubernetes_conn_id)

    def execute(self, context: Context) -> dict[str, Any]:
        for field in ("entrypoint", "name", "namespace", "manifest"):
            if is_templated(getattr(self, field)):
                raise InvalidParameterError(field, getattr(self, field), "still holds Jinja after rendering")
        identity = self.identity_from_context(context)
        self.namespace = self.namespace or self._connection_namespace()
        manifest = self.build_manifest(identity)
        name, namespace = manifest["metadata"]["name"], manifest["metadata"]["namespace"]
        hook = self.hook()
        existing = hook.list_rayjobs(namespace, label_selector({c.TASK_INSTANCE_LABEL: identity.key}))
        plan = plan_existing(existing, name, self.on_existing)
        for stale in plan.delete:
            self.log.info("Deleting RayJob %s/%s of an earlier try (on_existing=%s)", namespace, stale, self.on_existing)
            hook.delete_rayjob(stale, namespace)
        reattached = plan.attach is not None and plan.attach != name
        if plan.attach:
            name = plan.attach
            self.log.info("Re-attaching to RayJob %s/%s instead of submitting a second job", namespace, name)
        else:
            _, created = hook.create_rayjob(manifest)
            self.log.info("%s RayJob %s/%s", "Created" if created else "Found existing", namespace, name)
        self._rayjob_name, self._rayjob_namespace = name, namespace
        context["ti"].xcom_push(key="rayjob_name", value=name)
        if not self.wait_for_completion:
            return xcom_summary(RayJobStatus.from_object(hook.get_rayjob(name, namespace) or {}),
                                name=name, namespace=namespace, reattached=reattached)
        deadline = self._deadline()
        if self.deferrable:
            from kuberay_provider.triggers.rayjob import RayJobTrigger

            self.defer(
                trigger=RayJobTrigger(
                    name=name, namespace=namespace, kubernetes_conn_id=self.kubernetes_conn_id, deadline=deadline,
                    stream_logs=self.stream_logs, log_tail_lines=self.log_tail_lines,
                ),
                method_name="execute_complete",
                kwargs={"reattached": reattached},
                timeout=timedelta(seconds=deadline - time.time() + DEFERRAL_GRACE_SECONDS) if deadline else None,
            )
        event = self._wait_sync(hook, name, namespace, deadline, context)
        return self._complete(context, event, reattached=reattached, hook=hook)

    def execute_complete(self, context: Context, event: dict[str, Any], reattached: bool = False) -> dict[str, Any]:
        """Resume after the trigger fired: same handling as the synchronous wait."""
        rayjob = event.get("rayjob") or {}
        self._rayjob_name = rayjob.get("name") or context["ti"].xcom_pull(task_ids=self.task_id, key="rayjob_name")
        self._rayjob_namespace = rayjob.get("namespace") or self.namespace
        return self._complete(context, event, reattached=reattached, hook=None)

    def _connection_namespace(self) -> str:
        try:
            return self.hook().get_namespace() or c.DEFAULT_NAMESPACE
        except Exception as exc:
            raise InvalidParameterError(
                "kubernetes_conn_id", self.kubernetes_conn_id, f"could not be read: {exc}"
            ) from exc

    def _deadline(self) -> float | None:
        seconds = self.timeout or (self.execution_timeout.total_seconds() if self.execution_timeout else None)
        return time.time() + seconds if seconds else None

    def _wait_sync(self, hook: KubeRayHook, name: str, namespace: str, deadline: float | None,
                   context: Context) -> dict[str, Any]:
        """Wait in the worker with the same watch logic as the trigger; returns the same event shape."""
        from kuberay_provider.errors import RayJobGoneError
        from kuberay_provider.hooks.kuberay import RayJobWaitTimeout
        from kuberay_provider.hooks.pods import LogTail
        from kuberay_provider.hooks.watching import Finished, Gone, RayJobWaiter, TimedOut

        tail = LogTail(self.log_tail_lines)
        stop = threading.Event()
        follower = None
        if self.stream_logs:
            follower = threading.Thread(
                target=hook.stream_driver_log, args=(name, namespace, tail, self._emit_driver_line, stop),
                name=f"driver-log-{name}", daemon=True,
            )
            follower.start()
        waiter = RayJobWaiter(name, namespace, timeout=None if deadline is None else max(0.0, deadline - time.time()))

        def on_status(status: RayJobStatus) -> None:
            self.log.info("%s", status.describe())
            self._persist_dashboard(context, status)

        outcome: Any
        try:
            outcome = Finished(hook.wait_for_rayjob(name, namespace, on_status=on_status, waiter=waiter))
        except RayJobWaitTimeout as exc:
            outcome = TimedOut(exc.last)
        except RayJobGoneError:
            outcome = Gone(waiter.last)
        except Exception as exc:
            return error_event(f"{type(exc).__name__}: {exc}", tail.lines)
        finally:
            stop.set()
            if follower:
                follower.join(LOG_DRAIN_SECONDS)
        ok = succeeded(outcome)
        status = final_status(outcome)
        diagnostics = hook.diagnose(status) if status and not ok else []
        if not tail.lines and not ok:
            try:
                hook.read_driver_log_tail(name, namespace, tail)
            except Exception as exc:
                self.log.warning("Could not read the driver log tail: %s", exc)
        return outcome_event(outcome, name, namespace, diagnostics=diagnostics, log_tail=tail.lines)

    def _emit_driver_line(self, line: str) -> None:
        self.log.info("[driver] %s", line)

    def _persist_dashboard(self, context: Context, status: RayJobStatus) -> None:
        url = dashboard_link(status.dashboard_url, self.dashboard_url_template,
                             namespace=status.namespace, cluster=status.cluster_name)
        if url:
            context["ti"].xcom_push(key=DASHBOARD_XCOM_KEY, value=url)

    def _complete(self, context: Context, event: Mapping[str, Any], *, reattached: bool,
                  hook: KubeRayHook | None) -> dict[str, Any]:
        """Turn an outcome event into the task's result: return the summary, or clean up and fail."""
        kind = event.get("status")
        status = RayJobStatus.from_dict(event["rayjob"]) if event.get("rayjob") else None
        name = self._rayjob_name or (status.name if status else "")
        namespace = self._rayjob_namespace or (status.namespace if status else c.DEFAULT_NAMESPACE)
        if status:
            self._persist_dashboard(context, status)
        if delete_after(kind, self.cleanup_policy) and kind != "deleted":
            self._delete(hook or self.hook(), name, namespace, f"outcome {kind}, cleanup_policy={self.cleanup_policy}")
        if kind == SUCCESS:
            self.log.info("%s", event.get("message"))
            return xcom_summary(status, name=name, namespace=namespace, reattached=reattached)
        report = failure_report(event)
        self.log.error("%s", report)
        raise AirflowException(report)

    def _delete(self, hook: KubeRayHook, name: str, namespace: str, why: str) -> None:
        try:
            if hook.delete_rayjob(name, namespace):
                self.log.info("Deleted RayJob %s/%s (%s); KubeRay stops the job and removes its cluster", namespace, name, why)
        except Exception:
            self.log.exception("Could not delete RayJob %s/%s; the janitor will remove it", namespace, name)

    def on_kill(self) -> None:
        """Task killed (UI mark failed/clear, execution_timeout in the worker): delete the RayJob."""
        if self._rayjob_name and self._rayjob_namespace:
            self._delete(self.hook(), self._rayjob_name, self._rayjob_namespace, "the task was killed")
