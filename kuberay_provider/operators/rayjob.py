"""RayJobOperator: one transient Ray cluster per task, waited for without holding a worker slot.

Importing this module is cheap: the Kubernetes clients, the hooks and the trigger are imported inside the
methods that use them, because Airflow parses DAG files again and again.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from kuberay_provider import constants as c
from kuberay_provider import lifecycle, links, specs
from kuberay_provider.compat import AirflowException, BaseOperator, conf
from kuberay_provider.errors import InvalidParameterError
from kuberay_provider.lifecycle import CLEANUP_POLICIES, ON_EXISTING
from kuberay_provider.namespaces import resolve_namespace
from kuberay_provider.naming import (
    TaskInstanceIdentity,
    validate_labels,
    validate_namespace,
    validate_raycluster_name,
    validate_rayjob_name,
)
from kuberay_provider.operators.templating import TemplateFile, TemplateFileFields, as_template_file
from kuberay_provider.outcome import SUCCESS, failure_report, xcom_summary
from kuberay_provider.params import as_int, as_number, as_seconds, check_conn_id, known_now, resolved_at_runtime
from kuberay_provider.status import RayJobStatus

if TYPE_CHECKING:
    from kuberay_provider.compat import Context
    from kuberay_provider.hooks.kuberay import KubeRayHook

DEFAULT_IMAGE = "rayproject/ray:2.60.0-py311"
DEFERRAL_GRACE_SECONDS = 120


class RayJobOperator(TemplateFileFields, BaseOperator):
    """Run ``entrypoint`` on a transient Ray cluster created by a KubeRay ``RayJob``; delete it afterwards.

    The cluster is described compactly (``image``, ``head``, ``worker_groups``) or by a full RayJob
    ``manifest`` (dict, YAML string or templated ``.yaml`` file) into which the provider merges its name,
    labels and safe defaults. The task waits for the job in the triggerer (``deferrable=True``) or in the
    worker, streams the driver log into the task log, succeeds only on ``Complete`` + ``SUCCEEDED``, and
    deletes the RayJob (so its cluster) on failure, timeout and kill.

    Parameters marked (templated) can come from Jinja (``"{{ params.workers }}"``) or an upstream task's
    ``XComArg``, and any parameter from task mapping (``.partial(...).expand(...)`` / ``.expand_kwargs(...)``):
    checks that need the value run when the DAG is parsed if the value is known then, and otherwise at the start
    of ``execute`` on the rendered value. Numeric parameters accept integer-valued strings (what Jinja renders) and
    native numbers (``render_template_as_native_obj=True``).

    :param entrypoint: shell command run by ``ray job submit`` (e.g. ``python train.py``); required unless a full
        ``manifest`` is given (or ``submission_mode="InteractiveMode"``). (templated)
    :param image: Ray image for head and workers (a group may override it); default
        ``rayproject/ray:2.60.0-py311``. (templated)
    :param head: head resources, e.g. ``{"cpu": 2, "memory": "8Gi"}`` (the same keys as a worker group, without the
        replica counts; a TPU head must be a single host). (templated)
    :param worker_groups: e.g. ``[{"name": "cpu", "replicas": 2, "cpu": 4, "memory": "16Gi"}]``; set
        ``min_replicas``/``max_replicas`` to enable autoscaling; ``resources`` for other extended resources.
        (templated) Accelerators on GKE, per group (head included):

        * ``gpus``: NVIDIA GPUs per pod (``nvidia.com/gpu`` requests = limits, an integer ≥ 0), with
          ``gpu_accelerator`` the GPU type (node selector ``cloud.google.com/gke-accelerator``, e.g. ``"nvidia-l4"``);
        * ``tpus``: TPU chips per host (``google.com/tpu`` requests = limits), with ``tpu_accelerator`` (node selector
          ``cloud.google.com/gke-tpu-accelerator``, e.g. ``"tpu-v6e-slice"``, ``"tpu-v4-podslice"``) and
          ``tpu_topology`` (``cloud.google.com/gke-tpu-topology``, e.g. ``"4x4"``; 3 dimensions such as ``"2x2x1"``
          for v4/v5p). A multi-host slice gets ``numOfHosts`` = chips of the topology / ``tpus`` (``4x4`` with
          ``tpus=4``: 4 hosts per replica; ``replicas`` counts slices), and the topology must be filled exactly.

        Both add the toleration for the ``NoSchedule`` taint of GKE's GPU/TPU node pools. A group's own
        ``node_selector``/``tolerations`` entries win over the derived ones. Multi-host TPUs need KubeRay's TPU
        webhook (part of GKE's Ray Operator add-on) to set ``TPU_WORKER_HOSTNAMES``.
    :param runtime_env: Ray runtime_env mapping (or YAML string). (templated)
    :param manifest: a full RayJob manifest instead of the compact parameters (mapping, YAML string, or the name
        of a templated ``.yaml``/``.yml`` file; only this field is ever loaded as a template file). (templated)
    :param name: RayJob name; default: deterministic from dag_id, task_id, run_id, map_index and try. (templated)
    :param namespace: Kubernetes namespace (default: the connection's extra ``namespace``, else ``default``; see
        :mod:`kuberay_provider.namespaces`). (templated)
    :param kubernetes_conn_id: the Airflow connection to the Kubernetes cluster (type ``kubernetes`` or
        ``kuberay``); default ``kubernetes_default``.
    :param labels: extra labels on the RayJob; the provider's own identity labels are added to them. (templated)
    :param annotations: extra annotations on the RayJob; the provider's own are added to them. (templated)
    :param service_account: the Kubernetes service account (KSA) of the head, every worker and the K8sJobMode
        submitter pod (``serviceAccountName``). With GKE Workload Identity this is how the Ray job reaches BigQuery
        and GCS with no key anywhere: bind the KSA to a Google service account (GSA) once, by annotating it
        ``iam.gke.io/gcp-service-account: <gsa>@<project>.iam.gserviceaccount.com`` and granting the KSA
        ``roles/iam.workloadIdentityUser`` on the GSA (member
        ``serviceAccount:<project>.svc.id.goog[<namespace>/<ksa>]``), then give the GSA the data roles
        (e.g. ``roles/bigquery.dataEditor``, ``roles/bigquery.readSessionUser``). Google client libraries in the
        pods pick the credentials up from the metadata server (ADC). Or, with direct Workload Identity Federation,
        grant the roles to the principal ``principal://iam.googleapis.com/projects/<number>/locations/global/
        workloadIdentityPools/<project>.svc.id.goog/subject/ns/<namespace>/sa/<ksa>`` without a GSA. (templated)
    :param node_selector: node selector of every Ray pod. (templated)
    :param tolerations: tolerations of every Ray pod (Kubernetes toleration mappings). (templated)
    :param image_pull_secrets: names of the Secrets the Ray pods pull their images with. (templated)
    :param enable_token_auth: turn on Ray token authentication (KubeRay ≥ 1.5.1 ``authOptions.mode: token``, Ray
        ≥ 2.52.0; ``ray_version`` defaults to the version in the image tag): every Ray endpoint (GCS, dashboard,
        job API) then requires a bearer token, which KubeRay generates into a Secret and injects into the Ray
        containers and the submitter through ``secretKeyRef``. The provider never reads it: it follows the job
        through the Kubernetes API (RayJob status, submitter pod logs), so the token appears in no XCom, link, log
        or rendered field. People opening the dashboard link need the token from the Secret. Not with
        ``cluster_selector`` (the shared cluster's own ``authOptions`` decide).
    :param token_auth_secret: name of an existing Secret holding the token instead of a generated one
        (``authOptions.secretName``; implies ``enable_token_auth``). (templated)
    :param secret_env: credentials for the job as Kubernetes Secret references, ``{"ENV": "secret-name:key"}``;
        they reach every Ray container through ``secretKeyRef`` and never appear in the spec. A literal value is
        refused only when it is a secret: a known token format (``ghp_…``, ``hf_…``, ``AKIA…``, a private key, …) or
        a credential-shaped name (``*_PASSWORD``, ``*_API_KEY``, ``*_TOKEN`` as a whole word, …) holding a value
        that looks like one (not a path, number, boolean or short word). (templated)
    :param allow_env: names of environment variables whose literal values the secret policy must accept even so
        (the escape hatch for a false alarm). (templated)
    :param ray_version: the RayCluster's ``rayVersion`` (validated). (templated)
    :param submission_mode: KubeRay's ``submissionMode``: ``K8sJobMode`` (default), ``HTTPMode``,
        ``InteractiveMode`` or ``SidecarMode``. (templated)
    :param shutdown_after_job_finishes: KubeRay deletes the cluster when the job ends (default True).
    :param ttl_seconds_after_finished: seconds KubeRay keeps the finished cluster before deleting it (default 60;
        requires ``shutdown_after_job_finishes``). (templated)
    :param backoff_limit: KubeRay's own retries of a failed job (default 0: Airflow's retries decide; KubeRay
        retries would submit the job again). (templated)
    :param pre_running_deadline_seconds: seconds the cluster may take to start running the job before the RayJob
        fails (default 900: an image that never pulls or a quota that never frees fails instead of hanging).
        (templated)
    :param active_deadline_seconds: KubeRay's ``activeDeadlineSeconds``; default: ``timeout`` or the task's
        ``execution_timeout``, rounded up. (templated)
    :param job_id: the Ray job's submission id (KubeRay's ``jobId``). (templated)
    :param entrypoint_num_cpus: CPUs reserved for the entrypoint (KubeRay's ``entrypointNumCpus``). (templated)
    :param entrypoint_num_gpus: GPUs reserved for the entrypoint (KubeRay's ``entrypointNumGpus``). (templated)
    :param cluster_selector: name of an existing RayCluster to run on instead of creating one. (templated)
    :param queue_name: the Kueue ``LocalQueue`` (in the RayJob's namespace) that admits this job, set as the label
        ``kueue.x-k8s.io/queue-name``. The RayJob is then created with ``spec.suspend: true``; Kueue admits it by
        setting ``suspend: false`` when the queue's ClusterQueue has quota, and only then does KubeRay create the
        cluster. While it waits the task reports it as *queued*; ``pre_running_deadline_seconds`` and the
        ``activeDeadlineSeconds`` derived from ``timeout`` count from admission (KubeRay's new ``startTime``),
        ``timeout`` itself counts from the start of the task. Kueue refuses a queued RayJob with
        ``cluster_selector``, autoscaling (``min_replicas`` != ``max_replicas``), more than 7 worker groups, a
        worker group named ``head`` or ``shutdown_after_job_finishes=False``; so does this operator, up front.
        (templated)
    :param priority_class: a Kueue ``WorkloadPriorityClass`` name (label ``kueue.x-k8s.io/priority-class``) that
        orders this job in its queue and may let it preempt lower ones (a preempted job is suspended, reported as
        queued again, and re-runs from scratch on re-admission). Needs ``queue_name``. (templated)
    :param on_existing: a still-running RayJob of an earlier try: ``reattach`` (default), ``replace`` or ``fail``.
    :param cleanup_policy: ``on_failure`` (default), ``always`` or ``keep_failed``; see
        :func:`kuberay_provider.lifecycle.delete_after`.
    :param deferrable: wait in the triggerer; default ``[operators] default_deferrable``.
    :param timeout: seconds to wait for the job; default: the task's ``execution_timeout``. (templated)
    :param wait_for_completion: if False, return once the RayJob is created.
    :param stream_logs: copy the driver log into the task log while the job runs.
    :param log_tail_lines: driver-log lines kept for the failure message (default 50). (templated)
    :param dashboard_url_template: how to turn a cluster into a browser URL for the "Ray Dashboard" extra link
        (an ingress, say), using ``{namespace}``, ``{cluster}``, ``{rayjob}`` and ``{dashboard_url}``; default: the
        Kubernetes API server's service proxy for the head Service,
        ``<api server>/api/v1/namespaces/<ns>/services/<cluster>-head-svc:dashboard/proxy/``. The link appears as
        soon as the placeholders it uses are known, before the task defers.
    """

    template_fields: Sequence[str] = (
        "entrypoint", "image", "head", "worker_groups", "runtime_env", "manifest", "name", "namespace",
        "labels", "annotations", "cluster_selector", "job_id", "service_account", "secret_env", "node_selector",
        "tolerations", "image_pull_secrets", "ray_version", "submission_mode", "ttl_seconds_after_finished",
        "backoff_limit", "pre_running_deadline_seconds", "active_deadline_seconds", "entrypoint_num_cpus",
        "entrypoint_num_gpus", "timeout", "log_tail_lines", "allow_env", "queue_name", "priority_class",
        "token_auth_secret",
    )
    #: Only ``manifest`` may name a template file; other strings ending in .yaml render as strings.
    template_ext: Sequence[str] = (".yaml", ".yml")
    template_file_fields: Sequence[str] = ("manifest",)
    template_fields_renderers = {"manifest": "yaml", "runtime_env": "json", "head": "json", "worker_groups": "json"}
    ui_color = "#028bbd"
    operator_extra_links = (links.RayDashboardLink(), links.CloudLoggingLink(), links.GkeWorkloadLink())

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
        allow_env: Sequence[str] | None = None,
        ray_version: str | None = None,
        submission_mode: str = specs.DEFAULT_SUBMISSION_MODE,
        shutdown_after_job_finishes: bool = True,
        ttl_seconds_after_finished: int | str = specs.DEFAULT_TTL_SECONDS_AFTER_FINISHED,
        backoff_limit: int | str = specs.DEFAULT_BACKOFF_LIMIT,
        pre_running_deadline_seconds: int | str | None = specs.DEFAULT_PRE_RUNNING_DEADLINE_SECONDS,
        active_deadline_seconds: int | str | None = None,
        job_id: str | None = None,
        entrypoint_num_cpus: float | str | None = None,
        entrypoint_num_gpus: float | str | None = None,
        cluster_selector: str | None = None,
        queue_name: str | None = None,
        priority_class: str | None = None,
        enable_token_auth: bool = False,
        token_auth_secret: str | None = None,
        on_existing: str = "reattach",
        cleanup_policy: str = "on_failure",
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        timeout: float | str | None = None,
        wait_for_completion: bool = True,
        stream_logs: bool = True,
        log_tail_lines: int | str = 50,
        dashboard_url_template: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.entrypoint = entrypoint
        self.image = image
        self.head = head
        self.worker_groups = worker_groups if worker_groups is not None else []
        self.runtime_env = runtime_env
        self.manifest = as_template_file(manifest, self.template_ext)
        self.name = name
        self.namespace = namespace
        self.kubernetes_conn_id = kubernetes_conn_id
        # Kept as given when Airflow resolves them at run time (an XComArg has no dict()); copied otherwise.
        self.labels = _copied(labels)
        self.annotations = _copied(annotations)
        self.service_account = service_account
        # Kept as given (not coerced with dict()/list(), which would split a string): validated when the spec is built.
        self.node_selector = node_selector if node_selector is not None else {}
        self.tolerations = tolerations if tolerations is not None else []
        self.image_pull_secrets = image_pull_secrets if image_pull_secrets is not None else []
        self.secret_env = secret_env
        self.allow_env = allow_env
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
        self.queue_name = queue_name
        self.priority_class = priority_class
        self.enable_token_auth = enable_token_auth
        self.token_auth_secret = token_auth_secret
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
        self._api_server: str | None = None
        self._pushed_links: dict[str, str] = {}
        self._validate(rendered=False)

    # -- validation --------------------------------------------------------------------------------------
    def _validate(self, rendered: bool) -> None:
        """Every parameter check, in one place.

        ``rendered=False`` (``__init__``, when the DAG is parsed): values only known at run time (Jinja, XComArg,
        mapped arguments, see :func:`~kuberay_provider.params.resolved_at_runtime`) are skipped, and if nothing is
        left unknown the RayJob is built against a placeholder identity so every rule is checked before the task
        ever runs. ``rendered=True`` (start of ``execute``): everything is judged; nothing has been created yet.
        """
        def known(*values: Any) -> bool:
            return rendered or known_now(*values)

        if known(self.on_existing) and self.on_existing not in ON_EXISTING:
            raise InvalidParameterError("on_existing", self.on_existing, f"must be one of {list(ON_EXISTING)}")
        if known(self.cleanup_policy) and self.cleanup_policy not in CLEANUP_POLICIES:
            raise InvalidParameterError("cleanup_policy", self.cleanup_policy, f"must be one of {list(CLEANUP_POLICIES)}")
        if known(self.manifest, self.entrypoint, self.submission_mode) and self.manifest is None \
                and not self.entrypoint and self.submission_mode != "InteractiveMode":
            raise InvalidParameterError("entrypoint", self.entrypoint, "is required unless a full manifest is given")
        if known(self.timeout):
            as_seconds(self.timeout, "timeout", allow_none=True)
        if known(self.log_tail_lines):
            as_int(self.log_tail_lines, "log_tail_lines", minimum=0)
        for flag in ("deferrable", "wait_for_completion", "stream_logs"):
            if known(getattr(self, flag)) and not isinstance(getattr(self, flag), bool):
                raise InvalidParameterError(flag, getattr(self, flag), "must be True or False")
        check_conn_id(self.kubernetes_conn_id)
        if self.dashboard_url_template is not None:
            self._check_dashboard_template()
        self._check_job_params(known)
        if self.name and known(self.name):
            validate_rayjob_name(self.name, "name")
        if self.namespace and known(self.namespace):
            validate_namespace(self.namespace)
        if known(self.labels):
            validate_labels(self.labels)
        if self.cluster_selector is not None and known(self.cluster_selector):
            validate_raycluster_name(self.cluster_selector, "cluster_selector")
        if known(self.secret_env, self.cluster_selector, self.manifest) and self.secret_env \
                and (self.cluster_selector or self._manifest_selects_a_cluster()):
            raise InvalidParameterError(
                "secret_env", sorted(self.secret_env), "cannot be used with cluster_selector: this task creates no "
                "Ray pods; give the shared cluster's pods the Secret references instead",
            )
        if known(self.secret_env):
            specs.parse_secret_env(self.secret_env)
        if known(self.queue_name, self.priority_class):
            specs.kueue_labels(self.queue_name, self.priority_class)
        if known(self.token_auth_secret) and specs.auth_options(self.enable_token_auth, self.token_auth_secret) \
                and known(self.cluster_selector) and self.cluster_selector:
            raise InvalidParameterError(
                "enable_token_auth" if not self.token_auth_secret else "token_auth_secret",
                self.token_auth_secret or self.enable_token_auth, "cannot be used with cluster_selector: the shared "
                "RayCluster's own authOptions decide (KubeRay gives its submitter the cluster's token)")
        if rendered:
            return  # execute() builds (and so validates) the real RayJob next
        pod_fields = (self.head, self.worker_groups, self.image, self.service_account, self.node_selector,
                      self.tolerations, self.image_pull_secrets, self.secret_env, self.ray_version,
                      self.token_auth_secret)
        if self.manifest is None and known_now(self.cluster_selector, *pod_fields):
            self._cluster_spec()
        if self.manifest is not None and known_now(self.manifest) and not isinstance(self.manifest, TemplateFile):
            specs.load_manifest(self.manifest)
        others = [getattr(self, f) for f in self.template_fields if f not in ("name", "namespace")]
        if known_now(*others) and not isinstance(self.manifest, TemplateFile):
            # Everything is known now: build against a placeholder identity so every KubeRay rule is checked
            # when the DAG is parsed, not when the task runs.
            placeholder = TaskInstanceIdentity(dag_id="dag", task_id="task", run_id="run")
            saved = self.name
            if self.name is not None and not known_now(self.name):
                self.name = None
            try:
                namespace = self.namespace if self.namespace and known_now(self.namespace) else c.DEFAULT_NAMESPACE
                self.build_manifest(placeholder, namespace=namespace)
            finally:
                self.name = saved

    def _check_dashboard_template(self) -> None:
        template = self.dashboard_url_template
        try:
            if not isinstance(template, str):
                raise TypeError
            url = template.format(namespace="ns", cluster="cluster", rayjob="job", dashboard_url="host:8265")
        except (KeyError, IndexError, ValueError, TypeError):
            raise InvalidParameterError(
                "dashboard_url_template", template,
                "must be a string using only {namespace}, {cluster}, {rayjob} and {dashboard_url}",
            ) from None
        if not url.startswith(("http://", "https://")):
            raise InvalidParameterError("dashboard_url_template", template, "must produce an http:// or https:// URL")

    def _manifest_selects_a_cluster(self) -> bool:
        if self.manifest is None or isinstance(self.manifest, TemplateFile):
            return False
        return bool((specs.load_manifest(self.manifest).get("spec") or {}).get("clusterSelector"))

    #: (parameter, minimum, optional): the RayJob's integer settings, one rule (:func:`~kuberay_provider.params.as_int`).
    _INT_SETTINGS = (
        ("ttl_seconds_after_finished", 0, False),
        ("backoff_limit", 0, False),
        ("pre_running_deadline_seconds", 1, True),
        ("active_deadline_seconds", 1, True),
    )

    def _check_job_params(self, known: Any) -> None:
        """The job settings that are known (all of them once rendered), each by its one rule."""
        if known(self.submission_mode) and self.submission_mode not in specs.SUBMISSION_MODES:
            raise InvalidParameterError(
                "submission_mode", self.submission_mode,
                f"must be one of {list(specs.SUBMISSION_MODES)} (KubeRay accepts typos and then never finishes)",
            )
        if not isinstance(self.shutdown_after_job_finishes, bool):
            raise InvalidParameterError("shutdown_after_job_finishes", self.shutdown_after_job_finishes, "must be a bool")
        for param, minimum, optional in self._INT_SETTINGS:
            if known(getattr(self, param)):
                as_int(getattr(self, param), param, minimum=minimum, allow_none=optional)
        for param in ("entrypoint_num_cpus", "entrypoint_num_gpus"):
            if known(getattr(self, param)):
                as_number(getattr(self, param), param, allow_none=True)
        if known(self.ttl_seconds_after_finished) and as_int(self.ttl_seconds_after_finished, "ttl_seconds_after_finished",
                                                             minimum=0) > 0 and not self.shutdown_after_job_finishes:
            raise InvalidParameterError(
                "ttl_seconds_after_finished", self.ttl_seconds_after_finished,
                "requires shutdown_after_job_finishes=True (KubeRay rejects a TTL without it)",
            )
        if known(self.runtime_env):
            specs.runtime_env_yaml(self.runtime_env)

    def _job_settings(self, active_deadline: int | None = None) -> specs.JobSettings:
        """The job part of the RayJob from the (known) parameters, numbers normalised by their one rule."""
        ints = {p: as_int(getattr(self, p), p, minimum=m, allow_none=o) for p, m, o in self._INT_SETTINGS}
        return specs.JobSettings(
            entrypoint=self.entrypoint,
            runtime_env=self.runtime_env,
            submission_mode=self.submission_mode,
            shutdown_after_job_finishes=self.shutdown_after_job_finishes,
            ttl_seconds_after_finished=ints["ttl_seconds_after_finished"],
            backoff_limit=ints["backoff_limit"],
            pre_running_deadline_seconds=ints["pre_running_deadline_seconds"],
            active_deadline_seconds=ints["active_deadline_seconds"] or active_deadline,
            job_id=self.job_id,
            entrypoint_num_cpus=as_number(self.entrypoint_num_cpus, "entrypoint_num_cpus", allow_none=True),
            entrypoint_num_gpus=as_number(self.entrypoint_num_gpus, "entrypoint_num_gpus", allow_none=True),
            cluster_selector={c.RAY_CLUSTER_LABEL: self.cluster_selector} if self.cluster_selector else None,
            submitter_pod_template=self._submitter_pod_template(),
        )

    def _submitter_pod_template(self) -> dict[str, Any] | None:
        """With ``service_account`` in K8sJobMode the submitter pod runs as that account too (KubeRay's default
        submitter otherwise runs as the namespace's ``default`` account)."""
        if not self.service_account or self.submission_mode != "K8sJobMode":
            return None
        head_image = (self.head or {}).get("image") if isinstance(self.head, Mapping) else None
        return specs.submitter_pod_template(head_image or self.image, self.service_account)

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
        auth = specs.auth_options(self.enable_token_auth, self.token_auth_secret)
        ray_version = specs.ray_version_for_auth(self.ray_version, head.image or self.image, auth)
        return specs.build_ray_cluster_spec(head=head, worker_groups=workers, pod=pod, ray_version=ray_version,
                                            auth=auth)

    # -- building ------------------------------------------------------------------------------------------
    def _timeout_seconds(self) -> float | None:
        seconds = as_seconds(self.timeout, "timeout", allow_none=True)
        if seconds is None and self.execution_timeout:
            seconds = self.execution_timeout.total_seconds()
        return seconds or None

    def _active_deadline_from_timeout(self) -> int | None:
        seconds = self._timeout_seconds()
        return max(1, math.ceil(seconds)) if seconds else None

    def build_manifest(self, identity: TaskInstanceIdentity, namespace: str | None = None) -> dict[str, Any]:
        """The RayJob this task creates (pure given the rendered parameters); validated before returning."""
        name = self.name or identity.rayjob_name()
        namespace = namespace or self.namespace or c.DEFAULT_NAMESPACE
        labels = {**self.labels, **specs.kueue_labels(self.queue_name, self.priority_class), **identity.labels()}
        annotations = {**self.annotations, **identity.annotations()}
        job = self._job_settings(self._active_deadline_from_timeout())
        if self.manifest is not None:
            user = specs.load_manifest(self.manifest)
            defaults = {k: v for k, v in job.to_spec().items() if k in (
                "submissionMode", "shutdownAfterJobFinishes", "ttlSecondsAfterFinished", "backoffLimit",
                "preRunningDeadlineSeconds", "activeDeadlineSeconds")}
            if self.entrypoint:
                user["spec"]["entrypoint"] = self.entrypoint
            auth = specs.auth_options(self.enable_token_auth, self.token_auth_secret)
            if auth and isinstance(user["spec"].get("rayClusterSpec"), dict):
                cluster = user["spec"]["rayClusterSpec"]
                cluster.setdefault("authOptions", auth)
                image = ((((cluster.get("headGroupSpec") or {}).get("template") or {}).get("spec") or {}).get(
                    "containers") or [{}])[0].get("image")
                if not cluster.get("rayVersion") and (self.ray_version or specs.ray_version_of_image(image or "")):
                    cluster["rayVersion"] = self.ray_version or specs.ray_version_of_image(image or "")
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
        specs.apply_queue(manifest)
        specs.validate_rayjob(manifest, allow_env=self._allowed_env())
        return manifest

    def _allowed_env(self) -> tuple[str, ...]:
        if self.allow_env is None:
            return ()
        if isinstance(self.allow_env, str) or not all(isinstance(n, str) and n for n in self.allow_env):
            raise InvalidParameterError("allow_env", self.allow_env, "must be a list of environment variable names")
        return tuple(self.allow_env)

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
        """Check the rendered parameters, create (or re-attach to) the RayJob, wait, clean up, report."""
        if isinstance(self.manifest, TemplateFile):
            raise InvalidParameterError("manifest", str(self.manifest), "names a template file that was not rendered")
        self._validate(rendered=True)
        identity = self.identity_from_context(context)
        hook = self.hook()
        namespace = resolve_namespace(self.namespace, self.kubernetes_conn_id, hook=hook)
        manifest = self.build_manifest(identity, namespace=namespace)
        started = lifecycle.start_rayjob(hook, manifest, task_instance_key=identity.key, on_existing=self.on_existing,
                                         log=self.log)
        name, namespace, reattached = started.name, started.namespace, started.reattached
        self._rayjob_name, self._rayjob_namespace = name, namespace
        context["ti"].xcom_push(key="rayjob_name", value=name)
        self._api_server = self._api_server_of(hook)
        self._publish_console_links(context, hook, name=name, namespace=namespace)
        # A re-attached job may already name its cluster; a new one does not (no request spent on it).
        status = (RayJobStatus.from_object(hook.get_rayjob(name, namespace) or {})
                  if reattached or not self.wait_for_completion else RayJobStatus(name=name, namespace=namespace))
        self._persist_dashboard(context, status, name=name, namespace=namespace)
        if not self.wait_for_completion:
            return xcom_summary(status, name=name, namespace=namespace, reattached=reattached)
        deadline = self._deadline()
        if self.deferrable:
            from kuberay_provider.triggers.rayjob import RayJobTrigger

            self.defer(
                trigger=RayJobTrigger(
                    name=name, namespace=namespace, kubernetes_conn_id=self.kubernetes_conn_id, deadline=deadline,
                    stream_logs=self.stream_logs, log_tail_lines=self._log_tail_lines(),
                ),
                method_name="execute_complete",
                kwargs={"reattached": reattached, "name": name, "namespace": namespace,
                        "api_server": self._api_server},
                timeout=timedelta(seconds=deadline - time.time() + DEFERRAL_GRACE_SECONDS) if deadline else None,
            )

        def on_status(status: RayJobStatus) -> None:
            self.log.info("%s", status.describe())
            self._persist_dashboard(context, status)

        event = lifecycle.wait_sync(hook, name, namespace, deadline=deadline, log_tail_lines=self._log_tail_lines(),
                                    stream_logs=self.stream_logs, emit_line=self._emit_driver_line,
                                    on_status=on_status, log=self.log)
        return self._complete(context, event, reattached=reattached, hook=hook)

    def execute_complete(self, context: Context, event: dict[str, Any], reattached: bool = False,
                         name: str | None = None, namespace: str | None = None,
                         api_server: str | None = None) -> dict[str, Any]:
        """Resume after the trigger fired: same handling as the synchronous wait.

        The RayJob is the one this task created: the event's name/namespace, else those ``execute`` resolved and
        passed along with the deferral (older deferrals: the final status, then the ``rayjob_name`` XCom and the
        namespace resolved again), so cleanup after a deferred error happens where the job was created.
        """
        rayjob = event.get("rayjob") or {}
        # ``dag.test`` hands only the event over, not the deferral's kwargs: then ask the hook (no request)
        self._api_server = api_server or self._api_server_of(self.hook())
        self._rayjob_name = (event.get("name") or name or rayjob.get("name")
                             or context["ti"].xcom_pull(task_ids=self.task_id, key="rayjob_name"))
        self._rayjob_namespace = (event.get("namespace") or namespace or rayjob.get("namespace")
                                  or resolve_namespace(self.namespace, self.kubernetes_conn_id, hook=self.hook()))
        return self._complete(context, event, reattached=reattached, hook=None)

    def _log_tail_lines(self) -> int:
        return as_int(self.log_tail_lines, "log_tail_lines", minimum=0)

    def _deadline(self) -> float | None:
        seconds = self._timeout_seconds()
        return time.time() + seconds if seconds else None

    def _emit_driver_line(self, line: str) -> None:
        self.log.info("[driver] %s", line)

    @staticmethod
    def _api_server_of(hook: KubeRayHook) -> str | None:
        """The API server URL the hook talks to (for the service-proxy dashboard link); None if unknown."""
        try:
            return links.api_server_base(hook.api_client.configuration.host)
        except Exception:  # a link is never worth failing the task
            return None

    def _push_link(self, context: Context, link: Any, url: str | None) -> None:
        """Store a link's URL once per value (a sync wait reports many statuses)."""
        if url and self._pushed_links.get(link.name) != url:
            links.push_link(context["ti"], link, url)
            self._pushed_links[link.name] = url

    def _publish_console_links(self, context: Context, hook: KubeRayHook, *, name: str, namespace: str,
                               ray_cluster: str | None = None) -> None:
        """GKE mode: the Cloud Logging and GKE workload links (project, location, cluster from the connection)."""
        try:
            mode = hook.connection_mode
            if not mode.is_gke:
                return
            target = mode.gke
            project = target.project_id
            if not project:
                from kuberay_provider.hooks.gke import google_credentials

                project = google_credentials(target)[1]
        except Exception as exc:  # a link is never worth failing the task
            self.log.info("No Google Cloud console links: %s", exc)
            return
        if not project:
            self.log.info("No Google Cloud console links: the connection names no project_id")
            return
        where = {"project_id": project, "location": target.location, "gke_cluster": target.cluster_name,
                 "namespace": namespace}
        self._push_link(context, links.CloudLoggingLink(),
                        links.cloud_logging_link(**where, rayjob=name, ray_cluster=ray_cluster))
        self._push_link(context, links.GkeWorkloadLink(), links.gke_workload_link(**where))

    def _selected_cluster(self) -> str | None:
        """The RayCluster ``cluster_selector`` names (KubeRay creates no head Service of the RayJob's own then)."""
        selector = self.cluster_selector
        return selector if isinstance(selector, str) and selector else None

    def _persist_dashboard(self, context: Context, status: RayJobStatus, *, name: str | None = None,
                           namespace: str | None = None) -> None:
        """Store the "Ray Dashboard" link as soon as it can be built (see :func:`~kuberay_provider.links.dashboard_link`)."""
        rayjob = name or status.name or self._rayjob_name or ""
        url = links.dashboard_link(status.dashboard_url, self.dashboard_url_template,
                                   namespace=namespace or status.namespace, cluster=status.cluster_name
                                   or self._selected_cluster(),
                                   rayjob=rayjob, api_server=self._api_server)
        self._push_link(context, links.RayDashboardLink(), url)

    def _complete(self, context: Context, event: Mapping[str, Any], *, reattached: bool,
                  hook: KubeRayHook | None) -> dict[str, Any]:
        """Turn an outcome event into the task's result: return the summary, or clean up and fail."""
        kind = event.get("status")
        status = RayJobStatus.from_dict(event["rayjob"]) if event.get("rayjob") else None
        name = self._rayjob_name or (status.name if status else "")
        namespace = self._rayjob_namespace or (status.namespace if status else c.DEFAULT_NAMESPACE)
        if status:
            self._persist_dashboard(context, status)
        made: list[KubeRayHook] = [hook] if hook is not None else []

        def one_hook() -> KubeRayHook:  # diagnostics and cleanup share one hook, made only if either needs it
            if not made:
                made.append(self.hook())
            return made[0]

        event = lifecycle.with_diagnostics(event, one_hook)  # before any cleanup
        decision = lifecycle.finish(event, name=name, namespace=namespace, cleanup_policy=self.cleanup_policy,
                                    hook=one_hook, log=self.log)
        if kind == SUCCESS:
            self.log.info("%s", event.get("message"))
            return xcom_summary(status, name=name, namespace=namespace, reattached=reattached)
        report = failure_report(event)
        if decision.note and not decision.delete:
            report = f"{report}\n{decision.note}"
        self.log.error("%s", report)
        raise AirflowException(report)

    def on_kill(self) -> None:
        """Task killed (UI mark failed/clear, execution_timeout in the worker): delete the RayJob."""
        if self._rayjob_name and self._rayjob_namespace:
            lifecycle.delete_rayjob(self.hook(), self._rayjob_name, self._rayjob_namespace, "the task was killed",
                                    log=self.log)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage: the task's ``inlets`` and ``outlets`` (Airflow assets, OpenLineage datasets or URIs) as the
        job's input and output datasets (``bigquery://project/dataset/table`` as BigQuery's ``project.dataset.table``;
        see :mod:`kuberay_provider.lineage`). ``None`` without the OpenLineage provider, or with nothing declared."""
        from kuberay_provider.lineage import declared_datasets, operator_lineage

        return operator_lineage(*declared_datasets(self))


def _copied(mapping: Any) -> Any:
    """A dict copy of a mapping given now; a value Airflow resolves at run time (or a wrong type) as given."""
    if mapping is None:
        return {}
    if isinstance(mapping, Mapping) and not resolved_at_runtime(mapping):
        return dict(mapping)
    return mapping
