"""Names that identify KubeRay resources and this provider's labels. No imports beyond the standard library."""

from __future__ import annotations

RAY_GROUP = "ray.io"
RAY_VERSION = "v1"
RAY_API_VERSION = f"{RAY_GROUP}/{RAY_VERSION}"
RAYJOB_KIND = "RayJob"
RAYJOB_PLURAL = "rayjobs"
RAYCLUSTER_KIND = "RayCluster"
RAYCLUSTER_PLURAL = "rayclusters"

RAYJOB_FINALIZER = "ray.io/rayjob-finalizer"
SUBMITTER_CONTAINER = "ray-job-submitter"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
RAY_CLUSTER_LABEL = "ray.io/cluster"
RAY_NODE_TYPE_LABEL = "ray.io/node-type"
ORIGINATED_FROM_NAME_LABEL = "ray.io/originated-from-cr-name"
ORIGINATED_FROM_CRD_LABEL = "ray.io/originated-from-crd"
# Kueue's labels on a RayJob (``kueue.x-k8s.io/queue-name`` names a LocalQueue of the RayJob's namespace).
KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
KUEUE_PRIORITY_LABEL = "kueue.x-k8s.io/priority-class"

# Labels this provider puts on every object it creates (copied by KubeRay onto the RayCluster).
LABEL_PREFIX = "kuberay.airflow.apache.org"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "airflow-provider-kuberay"
DAG_ID_LABEL = f"{LABEL_PREFIX}/dag-id"
TASK_ID_LABEL = f"{LABEL_PREFIX}/task-id"
RUN_ID_LABEL = f"{LABEL_PREFIX}/run-id"
MAP_INDEX_LABEL = f"{LABEL_PREFIX}/map-index"
TRY_NUMBER_LABEL = f"{LABEL_PREFIX}/try-number"
# Label selecting every try of one task instance (hash of dag_id, task_id, run_id, map_index).
TASK_INSTANCE_LABEL = f"{LABEL_PREFIX}/ti-key"
# Annotations keep the full, unsanitised identity for humans and the janitor.
DAG_ID_ANNOTATION = f"{LABEL_PREFIX}/dag-id"
TASK_ID_ANNOTATION = f"{LABEL_PREFIX}/task-id"
RUN_ID_ANNOTATION = f"{LABEL_PREFIX}/run-id"

MAX_RAYJOB_NAME_LENGTH = 47
DEFAULT_NAMESPACE = "default"
