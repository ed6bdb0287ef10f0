"""Spark-ETL-then-Ray-training pipelines: the jobs shipped with the provider and the TaskGroup that runs them.

Importing this package is cheap (no ray, pyspark, kubernetes or google.cloud):

- :mod:`kuberay_provider.pipelines.builder` — :func:`~kuberay_provider.pipelines.builder.retraining_pipeline`,
  the ETL → training → teardown-confirmation TaskGroup used by ``dags/ray_retraining.py``.
- :mod:`kuberay_provider.pipelines.packaging` — zip a local ``working_dir`` deterministically, stage it to a URI and
  reference it in the RayJob's runtime_env (K8sJobMode cannot upload local directories).
- :mod:`kuberay_provider.pipelines.seed` — a deterministic raw churn data set loaded into BigQuery.
- ``kuberay_provider/pipelines/jobs/`` — ``churn_etl.py`` (PySpark) and ``churn_train.py`` (Ray Train + XGBoost),
  plain scripts with argparse CLIs.
- ``kuberay_provider/pipelines/templates/`` — the SparkApplication manifest template for spark-operator.
"""

from __future__ import annotations

from pathlib import Path

JOBS_DIR = Path(__file__).parent / "jobs"
TEMPLATES_DIR = Path(__file__).parent / "templates"

__all__ = ["JOBS_DIR", "TEMPLATES_DIR"]
