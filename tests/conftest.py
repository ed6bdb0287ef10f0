"""Shared fixtures: one local KubeRay stack (API server + controller + real Ray) for the whole session."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from kuberay_provider.local.stack import LocalStack

# py4j logs at INFO from __del__ when the interpreter exits, after pytest closed the captured streams.
logging.getLogger("py4j").setLevel(logging.WARNING)


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """A running :class:`LocalStack` (requeue 1 s) shared by every test of the session.

    Without the BigQuery emulator: tests that need one start their own (``tests/pipelines``, ``tests/bigquery``).
    """
    base: Path = tmp_path_factory.mktemp("kuberay-local")
    stack = LocalStack(base, requeue_seconds=1.0, bigquery=False)
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()
        assert stack.leftover_ray_pids() == [], "Ray processes left behind by the local stack"


@pytest.fixture
def namespace(local_stack: LocalStack) -> str:
    """A namespace name unique to the test (namespaces exist implicitly on the local API server)."""
    return f"t-{uuid.uuid4().hex[:10]}"
