"""RayJob and RayCluster manifests: building, merging, KubeRay's validation and the secret policy (pure).

* :mod:`.building` - compact operator parameters → manifests;
* :mod:`.merging` - user manifests: load, merge the provider's identity and defaults, add ``secret_env``;
* :mod:`.kuberay_rules` - the one judgement of a manifest (CRD schema with pruning and defaulting via
  :mod:`.crd_schema`, KubeRay's ``validation.go``, Kubernetes' Pod rules via :mod:`.pod_rules`);
* :mod:`.secret_policy` - which literal environment variables are secrets.

Every public name stays importable from ``kuberay_provider.specs``.
"""

from __future__ import annotations

from kuberay_provider.specs.building import (
    DEFAULT_BACKOFF_LIMIT,
    DEFAULT_PRE_RUNNING_DEADLINE_SECONDS,
    DEFAULT_SUBMISSION_MODE,
    DEFAULT_TTL_SECONDS_AFTER_FINISHED,
    INT32_MAX,
    SUBMISSION_ID,
    SUBMISSION_MODES,
    JobSettings,
    NodeGroup,
    PodSettings,
    apply_queue,
    auth_options,
    build_ray_cluster_spec,
    build_raycluster,
    build_rayjob,
    is_queued,
    kueue_labels,
    parse_secret_env,
    ray_version_for_auth,
    ray_version_of_image,
    runtime_env_yaml,
    submitter_pod_template,
    validate_quantity,
)
from kuberay_provider.specs.kuberay_rules import (
    FEATURE_GATES,
    MAX_RAYCLUSTER_NAME_LENGTH,
    MAX_RAYJOB_NAME_LENGTH,
    problems,
    validate_ray_cluster_spec,
    validate_raycluster,
    validate_rayjob,
)
from kuberay_provider.specs.merging import add_secret_env, load_manifest, merge_required_fields, pod_templates
from kuberay_provider.specs.secret_policy import is_credential_name, reject_inline_secrets, secret_reason

__all__ = [
    "DEFAULT_BACKOFF_LIMIT", "DEFAULT_PRE_RUNNING_DEADLINE_SECONDS", "DEFAULT_SUBMISSION_MODE",
    "DEFAULT_TTL_SECONDS_AFTER_FINISHED", "FEATURE_GATES", "INT32_MAX", "MAX_RAYCLUSTER_NAME_LENGTH",
    "MAX_RAYJOB_NAME_LENGTH", "SUBMISSION_ID", "SUBMISSION_MODES", "JobSettings", "NodeGroup", "PodSettings",
    "add_secret_env", "apply_queue", "auth_options", "build_ray_cluster_spec", "build_raycluster", "build_rayjob",
    "is_credential_name", "is_queued", "kueue_labels", "load_manifest", "merge_required_fields", "parse_secret_env",
    "pod_templates", "problems", "ray_version_for_auth", "ray_version_of_image", "reject_inline_secrets",
    "runtime_env_yaml", "secret_reason", "submitter_pod_template", "validate_quantity", "validate_ray_cluster_spec",
    "validate_raycluster", "validate_rayjob",
]
