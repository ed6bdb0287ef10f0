"""KubeRay v1.7.0's names and limits as the local double uses them (``ray-operator/controllers/ray/utils/constant.go``).

The local double is an independent oracle of KubeRay: it takes these from upstream, not from the product.
"""

from __future__ import annotations

RAY_GROUP = "ray.io"
RAYJOB_KIND = "RayJob"
RAYJOB_PLURAL = "rayjobs"
RAYCLUSTER_KIND = "RayCluster"
RAYCLUSTER_PLURAL = "rayclusters"
RAYJOB_FINALIZER = "ray.io/rayjob-finalizer"
SUBMITTER_CONTAINER = "ray-job-submitter"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
RAY_CLUSTER_LABEL = "ray.io/cluster"  # RayJobClusterSelectorKey / RayClusterLabelKey
RAY_NODE_TYPE_LABEL = "ray.io/node-type"
ORIGINATED_FROM_NAME_LABEL = "ray.io/originated-from-cr-name"
ORIGINATED_FROM_CRD_LABEL = "ray.io/originated-from-crd"
MAX_RAYCLUSTER_NAME_LENGTH = 53  # MaxRayClusterNameLength
MAX_RAYJOB_NAME_LENGTH = MAX_RAYCLUSTER_NAME_LENGTH - 6  # MaxRayJobNameLength
