"""The retraining pipeline's ETL and training operators: the stock ones, plus the BigQuery tables they read and write
reported to OpenLineage (:mod:`kuberay_provider.lineage`).

Each operator takes ``bigquery_inputs`` / ``bigquery_outputs``: ``{"table": "[project.]dataset.table", "schema":
"<role>"}`` entries (``table`` templated, so Variables resolve per run; ``schema`` a role of
:data:`~kuberay_provider.pipelines.tables.TABLE_COLUMNS` or omitted), and ``bigquery_project`` (templated) for table
names without a project. When the task ends, ``get_openlineage_facets_on_complete`` reports those tables with their
columns, plus the task's own ``inlets``/``outlets``; without the OpenLineage provider it returns ``None`` and the
operators behave exactly as the ones they extend. Importing this module imports no Spark, Ray or Kubernetes client.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from airflow.providers.standard.operators.bash import BashOperator

from kuberay_provider.errors import InvalidParameterError
from kuberay_provider.operators.rayjob import RayJobOperator
from kuberay_provider.pipelines.spark import SparkApplicationOperator

LINEAGE_FIELDS = ("bigquery_inputs", "bigquery_outputs", "bigquery_project")


def _tables(param: str, value: Any) -> list[dict[str, str]]:
    from kuberay_provider.pipelines.tables import TABLE_COLUMNS

    if isinstance(value, str | Mapping) or not isinstance(value, Sequence):
        raise InvalidParameterError(param, value, 'must be a list of {"table": ..., "schema": ...} mappings')
    entries = []
    for entry in value:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("table"), str) or set(entry) - {"table", "schema"}:
            raise InvalidParameterError(param, value, 'must be a list of {"table": ..., "schema": ...} mappings')
        if entry.get("schema") is not None and entry["schema"] not in TABLE_COLUMNS:
            raise InvalidParameterError(param, value, f"schema must be one of {sorted(TABLE_COLUMNS)}")
        entries.append(dict(entry))
    return entries


class BigQueryLineageMixin:
    """Adds ``bigquery_inputs``/``bigquery_outputs``/``bigquery_project`` and their OpenLineage report to an operator.

    :param bigquery_inputs: tables the task reads, ``[{"table": ..., "schema": role}]``. (templated)
    :param bigquery_outputs: tables the task writes, alike. (templated)
    :param bigquery_project: project of the table names that have none. (templated)
    """

    # Each operator class below has its own ``__init__`` (the same three lines): Airflow's operator metaclass wraps
    # the ``__init__`` of each operator class it creates and reads ``__wrapped__`` of the one it inherits, so an
    # ``__init__`` on this plain mixin would break it (AttributeError on Airflow 3).
    # class defaults: the base operator's __init__ may read its template fields before they are set
    bigquery_inputs: Sequence[Mapping[str, str]] = ()
    bigquery_outputs: Sequence[Mapping[str, str]] = ()
    bigquery_project: str | None = None

    def _set_lineage(self, inputs: Sequence[Mapping[str, str]], outputs: Sequence[Mapping[str, str]],
                     project: str | None) -> None:
        self.bigquery_inputs = _tables("bigquery_inputs", inputs)
        self.bigquery_outputs = _tables("bigquery_outputs", outputs)
        self.bigquery_project = project

    def _bigquery_refs(self, entries: Sequence[Mapping[str, str]]) -> list[Any]:
        from kuberay_provider.lineage import bigquery_dataset
        from kuberay_provider.pipelines.tables import TABLE_COLUMNS

        return [bigquery_dataset(e["table"], self.bigquery_project, TABLE_COLUMNS.get(e.get("schema") or "", ()))
                for e in entries]

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """The tables of ``bigquery_inputs``/``bigquery_outputs`` (with their columns) and the task's inlets and
        outlets as OpenLineage datasets; ``None`` without the OpenLineage provider."""
        from kuberay_provider.lineage import declared_datasets, operator_lineage

        inlets, outlets = declared_datasets(self)
        return operator_lineage([*self._bigquery_refs(self.bigquery_inputs), *inlets],
                                [*self._bigquery_refs(self.bigquery_outputs), *outlets])


class LocalSparkEtlOperator(BigQueryLineageMixin, BashOperator):
    """The ETL with ``local[N]`` Spark in the worker: a ``BashOperator`` reporting its BigQuery tables (see the
    module docstring for the ``bigquery_*`` parameters; every ``BashOperator`` parameter applies)."""

    template_fields: Sequence[str] = (*BashOperator.template_fields, *LINEAGE_FIELDS)

    def __init__(self, *, bigquery_inputs: Sequence[Mapping[str, str]] = (),
                 bigquery_outputs: Sequence[Mapping[str, str]] = (), bigquery_project: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._set_lineage(bigquery_inputs, bigquery_outputs, bigquery_project)


class SparkEtlOperator(BigQueryLineageMixin, SparkApplicationOperator):
    """The ETL as a SparkApplication: a :class:`~kuberay_provider.pipelines.spark.SparkApplicationOperator`
    reporting its BigQuery tables (see the module docstring for the ``bigquery_*`` parameters)."""

    template_fields: Sequence[str] = (*SparkApplicationOperator.template_fields, *LINEAGE_FIELDS)

    def __init__(self, *, bigquery_inputs: Sequence[Mapping[str, str]] = (),
                 bigquery_outputs: Sequence[Mapping[str, str]] = (), bigquery_project: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._set_lineage(bigquery_inputs, bigquery_outputs, bigquery_project)


class TrainingRayJobOperator(BigQueryLineageMixin, RayJobOperator):
    """The training job: a :class:`~kuberay_provider.operators.rayjob.RayJobOperator` reporting its BigQuery
    tables (see the module docstring for the ``bigquery_*`` parameters; every RayJobOperator parameter applies)."""

    template_fields: Sequence[str] = (*RayJobOperator.template_fields, *LINEAGE_FIELDS)

    def __init__(self, *, bigquery_inputs: Sequence[Mapping[str, str]] = (),
                 bigquery_outputs: Sequence[Mapping[str, str]] = (), bigquery_project: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._set_lineage(bigquery_inputs, bigquery_outputs, bigquery_project)


__all__ = ("BigQueryLineageMixin", "LocalSparkEtlOperator", "SparkEtlOperator", "TrainingRayJobOperator")
