"""OpenLineage datasets for the provider's tasks, reported through Airflow's OpenLineage integration.

Operators implement ``get_openlineage_facets_on_complete(task_instance)``; the OpenLineage provider's listener calls it
when a task finishes and puts the datasets into the task's COMPLETE event. Two kinds of datasets:

- **BigQuery tables** the provider's jobs read and write: namespace ``bigquery``, name ``project.dataset.table`` (the
  naming of OpenLineage and of Airflow's Google provider), with a ``schema`` facet listing the columns and their
  BigQuery types;
- **inlets and outlets** a task declares (Airflow assets / datasets, or OpenLineage ``Dataset`` objects):
  ``bigquery://project/dataset/table`` becomes the BigQuery dataset above, ``gs://bucket/path`` (``s3``, ``hdfs``,
  ``file`` alike) namespace ``gs://bucket`` and name ``path``, any other URI namespace ``scheme://authority`` and name
  its path (OpenLineage's naming conventions).

The description of a dataset (:class:`DatasetRef`) is pure and imports nothing. Only :func:`operator_lineage` imports
the OpenLineage provider and client, when it runs; without them it returns ``None`` (the listener does not exist
then either), so installing the provider is what turns lineage on and nothing changes without it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from kuberay_provider.bigquery.names import qualify_table_name
from kuberay_provider.errors import InvalidParameterError

BIGQUERY_NAMESPACE = "bigquery"
#: URI schemes whose namespace is ``scheme://authority`` and name the path without its leading slash
OBJECT_STORE_SCHEMES: Mapping[str, str] = {"gs": "gs", "gcs": "gs", "s3": "s3", "s3a": "s3", "hdfs": "hdfs"}


@dataclass(frozen=True)
class DatasetRef:
    """One OpenLineage dataset: ``namespace``, ``name`` and, when known, its columns as ``(name, type)`` pairs."""

    namespace: str
    name: str
    fields: tuple[tuple[str, str], ...] = ()

    @property
    def key(self) -> tuple[str, str]:
        """Identity of the dataset in OpenLineage: (namespace, name)."""
        return self.namespace, self.name


def _is_template(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def bigquery_table_name(table: str, project: str | None = None, *, param: str = "table") -> str:
    """``[project.]dataset.table`` → ``project.dataset.table`` (``project`` fills a missing one).

    Raises :class:`~kuberay_provider.errors.InvalidParameterError` naming ``param`` for an unrendered template or
    a malformed name (the rules of ``kuberay_provider.bigquery.names``, as the jobs and the BigQuery I/O apply).
    """
    if not isinstance(table, str) or not table.strip() or _is_template(table):
        raise InvalidParameterError(param, table, "must be a rendered BigQuery table name [project.]dataset.table")
    return qualify_table_name(table, None if _is_template(project) else project, param=param)


def bigquery_dataset(table: str, project: str | None = None,
                     fields: Iterable[tuple[str, str]] | None = None) -> DatasetRef:
    """The OpenLineage dataset of a BigQuery table: namespace ``bigquery``, name ``project.dataset.table``.

    :param table: ``[project.]dataset.table`` (rendered).
    :param project: fills a missing project.
    :param fields: the table's columns as ``(name, BigQuery type)`` pairs, reported as its schema facet.
    """
    return DatasetRef(BIGQUERY_NAMESPACE, bigquery_table_name(table, project), tuple((str(n), str(t))
                                                                                   for n, t in (fields or ())))


def uri_dataset(uri: str) -> DatasetRef:
    """The OpenLineage dataset an Airflow asset URI names (see the module docstring); raises for a URI without a
    scheme."""
    parts = urlsplit(uri.strip())
    scheme = parts.scheme.lower()
    if not scheme:
        raise InvalidParameterError("uri", uri, "must be a URI with a scheme (bigquery://, gs://, file://, ...)")
    if scheme == "bigquery":
        segments = [s for s in parts.path.split("/") if s]
        if not parts.netloc or len(segments) != 2:
            raise InvalidParameterError("uri", uri, "must be bigquery://project/dataset/table")
        return DatasetRef(BIGQUERY_NAMESPACE, ".".join([parts.netloc, *segments]))
    if scheme in OBJECT_STORE_SCHEMES:
        return DatasetRef(f"{OBJECT_STORE_SCHEMES[scheme]}://{parts.netloc}", parts.path.lstrip("/"))
    if scheme == "file":
        return DatasetRef(f"file://{parts.netloc}" if parts.netloc else "file", parts.path)
    return DatasetRef(f"{scheme}://{parts.netloc}" if parts.netloc else scheme, parts.path or parts.netloc)


def lineage_entity(entity: Any) -> DatasetRef | None:
    """An inlet or outlet as a dataset: an Airflow ``Asset`` (``Dataset`` on Airflow 2) or anything with a ``uri``,
    an OpenLineage ``Dataset`` (``namespace`` and ``name``; its schema facet kept), or a URI string. ``None`` for what
    names no dataset (an ``AssetAlias``, a reference to another task's outlets)."""
    if isinstance(entity, str):
        return uri_dataset(entity)
    namespace, name = getattr(entity, "namespace", None), getattr(entity, "name", None)
    if isinstance(namespace, str) and isinstance(name, str) and not hasattr(entity, "uri"):
        schema = (getattr(entity, "facets", None) or {}).get("schema")
        fields = tuple((f.name, f.type or "") for f in getattr(schema, "fields", None) or ())
        return DatasetRef(namespace, name, fields)
    uri = getattr(entity, "uri", None)
    if isinstance(uri, str) and uri:
        try:
            return uri_dataset(uri)
        except InvalidParameterError:
            return None
    return None


def merge(refs: Iterable[DatasetRef | None]) -> list[DatasetRef]:
    """``refs`` without ``None`` and duplicates (same namespace and name), in order; a duplicate's columns fill a
    dataset that has none."""
    merged: dict[tuple[str, str], DatasetRef] = {}
    for ref in refs:
        if ref is None:
            continue
        known = merged.get(ref.key)
        if known is None or (not known.fields and ref.fields):
            merged[ref.key] = ref
    return list(merged.values())


def declared_datasets(task: Any) -> tuple[list[DatasetRef], list[DatasetRef]]:
    """(inputs, outputs): the datasets of a task's ``inlets`` and ``outlets``."""
    return (merge(lineage_entity(i) for i in getattr(task, "inlets", None) or ()),
            merge(lineage_entity(o) for o in getattr(task, "outlets", None) or ()))


def to_openlineage(ref: DatasetRef) -> Any:
    """The OpenLineage client's ``Dataset`` for ``ref`` (imports the client; its schema facet when it has columns)."""
    from openlineage.client.event_v2 import Dataset
    from openlineage.client.facet_v2 import schema_dataset

    facets = {}
    if ref.fields:
        facets["schema"] = schema_dataset.SchemaDatasetFacet(fields=[
            schema_dataset.SchemaDatasetFacetFields(name=name, type=kind) for name, kind in ref.fields])
    return Dataset(namespace=ref.namespace, name=ref.name, facets=facets)


def openlineage_available() -> bool:
    """True when the OpenLineage provider and client import (the listener can report lineage)."""
    try:
        import openlineage.client.event_v2  # noqa: F401
        from airflow.providers.openlineage.extractors import OperatorLineage  # noqa: F401
    except ImportError:
        return False
    return True


def operator_lineage(inputs: Sequence[DatasetRef], outputs: Sequence[DatasetRef]) -> Any:
    """The OpenLineage provider's ``OperatorLineage`` with these datasets, or ``None`` when the provider or the
    client is not installed, or there is nothing to report."""
    if not openlineage_available() or not (inputs or outputs):
        return None
    from airflow.providers.openlineage.extractors import OperatorLineage

    return OperatorLineage(inputs=[to_openlineage(r) for r in merge(inputs)],
                           outputs=[to_openlineage(r) for r in merge(outputs)])


__all__ = ("BIGQUERY_NAMESPACE", "DatasetRef", "bigquery_dataset", "bigquery_table_name", "declared_datasets",
           "lineage_entity", "merge", "openlineage_available", "operator_lineage", "to_openlineage", "uri_dataset")
