"""Airflow assets (datasets on Airflow 2) for the retraining pipeline's BigQuery tables.

The features, metrics and predictions tables are declared as outlets of the tasks that write them, with the URIs
Airflow's Google provider uses for BigQuery assets: ``bigquery://<project>/<dataset>/<table>``. A downstream DAG
scheduled on :func:`churn_assets`\\ ``()["predictions"]`` runs after each retraining run that wrote fresh predictions.

An asset URI is fixed when the DAG file is parsed, while the tables' names are Variables read per run (templates).
So the URIs of the shipped DAGs take their project and dataset from the **environment form** of the same Variables
(``AIRFLOW_VAR_KUBERAY_BQ_PROJECT``, ``AIRFLOW_VAR_KUBERAY_BQ_DATASET``; what ``kuberay-local up`` writes, and a
Composer environment variable), never from the metadata database, else the defaults ``local-project``/``churn``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from kuberay_provider.bigquery.names import parse_table_name
from kuberay_provider.errors import InvalidParameterError

#: the pipeline's tables that are assets, by their role
ASSET_ROLES = ("features", "metrics", "predictions")
DEFAULT_PROJECT = "local-project"
DEFAULT_DATASET = "churn"


def bigquery_asset_uri(table: str, project: str | None = None, *, param: str = "table") -> str:
    """``[project.]dataset.table`` (``project`` fills a missing one) → ``bigquery://project/dataset/table``.

    Raises :class:`InvalidParameterError` naming ``param`` for a template (an asset URI is fixed at parse time),
    a malformed name or a missing project; names follow ``kuberay_provider.bigquery.names``, as the jobs and the
    BigQuery I/O check them.
    """
    if not isinstance(table, str) or "{{" in table or "{%" in table:
        raise InvalidParameterError(param, table, "must be a literal BigQuery table name [project.]dataset.table "
                                                  "(asset URIs are fixed when the DAG is parsed, templates are not)")
    name = parse_table_name(table, project, param=param)
    return f"bigquery://{name.project}/{name.dataset}/{name.table}"


def bigquery_asset(table: str, project: str | None = None, *, param: str = "table") -> Any:
    """An Airflow ``Asset`` (a ``Dataset`` on Airflow 2) for a BigQuery table (see :func:`bigquery_asset_uri`).

    Raises :class:`InvalidParameterError` naming ``param`` where Airflow itself refuses the URI (Airflow 2's
    datasets take ASCII URIs only: a table named with other letters is a valid BigQuery table but no dataset there).
    """
    from kuberay_provider.compat import Asset

    uri = bigquery_asset_uri(table, project, param=param)
    try:
        return Asset(uri)
    except ValueError as exc:
        raise InvalidParameterError(param, table, f"Airflow cannot make {uri!r} an asset ({exc}); leave the table out "
                                                  "of the assets (asset_tables) or rename it") from exc


def pipeline_assets(tables: Mapping[str, str], project: str | None = None) -> dict[str, Any]:
    """Assets for the pipeline tables named in ``tables`` (keys from :data:`ASSET_ROLES`)."""
    unknown = sorted(set(tables) - set(ASSET_ROLES))
    if unknown:
        raise InvalidParameterError("asset_tables", dict(tables), f"keys must be among {list(ASSET_ROLES)}")
    return {role: bigquery_asset(table, project, param=f"asset_tables[{role!r}]") for role, table in tables.items()}


def _env_variable(name: str, default: str) -> str:
    return os.environ.get(f"AIRFLOW_VAR_{name.upper()}") or default


def churn_asset_tables() -> dict[str, str]:
    """``{role: project.dataset.role}`` for ``dags/ray_retraining.py``'s tables, as its assets name them (project
    and dataset from the Variables' environment form, see the module docstring)."""
    project = _env_variable("kuberay_bq_project", DEFAULT_PROJECT)
    dataset = _env_variable("kuberay_bq_dataset", DEFAULT_DATASET)
    return {role: f"{project}.{dataset}.{role}" for role in ASSET_ROLES}


def churn_assets() -> dict[str, Any]:
    """The assets of ``dags/ray_retraining.py``'s features/metrics/predictions tables, as both it and a downstream
    DAG (``dags/churn_predictions_report.py``) declare them."""
    return pipeline_assets(churn_asset_tables())


__all__ = ("ASSET_ROLES", "bigquery_asset", "bigquery_asset_uri", "churn_asset_tables", "churn_assets",
           "pipeline_assets")
