"""Fixtures of the fault suite: the integration fixtures plus a 'nothing is left' check after every scenario."""

from __future__ import annotations

import pytest

from kuberay_provider import constants as c
from tests.integration.airflow_support import wait_until
from tests.integration.conftest import airflow_db, kube  # noqa: F401  (re-exported fixtures)


@pytest.fixture
def assert_nothing_left(local_stack, kube, namespace):  # noqa: F811
    """Yields a function to call at the end of a scenario: no RayJob (unless kept), RayCluster or Ray process."""

    def check(*, rayjobs_kept: int = 0, timeout: float = 120.0) -> None:
        wait_until(lambda: len(kube.list_rayjobs(namespace)) == rayjobs_kept, timeout=timeout)
        wait_until(lambda: kube.list_objects(c.RAYCLUSTER_KIND, namespace) == [], timeout=timeout)
        wait_until(lambda: local_stack.controller.running_clusters() == {}, timeout=timeout)
        # Pods go with the garbage collector's next pass after their RayCluster, as in Kubernetes.
        wait_until(lambda: kube.list_pods(namespace, "ray.io/is-ray-node=yes") == [], timeout=30)

    return check
