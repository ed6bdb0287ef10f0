"""BigQuery table names ``[project.]dataset.table``: the one set of rules, standard library only.

Every layer that takes a table name checks it here, so a name is accepted or refused the same way when the DAG is
parsed (asset URIs, lineage, the pipeline builder), when a shipped job parses its arguments and when the Ray/Spark
BigQuery I/O opens the table: no valid name is refused in one layer, no bad one gets as far as the cluster. Each
caller keeps naming its own parameter.

Accepted forms (surrounding whitespace and one pair of surrounding back-quotes are dropped):

- ``project.dataset.table`` and ``dataset.table`` (the project is filled in by the caller's default);
- legacy ``project:dataset.table``;
- domain-scoped projects: ``example.com:project.dataset.table`` (and legacy ``example.com:project:dataset.table``);
  the project id is then ``example.com:project``.

The parts follow BigQuery's documented rules, kept lenient where tests and emulators use short ids:

- project id (:data:`PROJECT_RULE`): lower-case letters, digits and ``-``, starting with a letter or digit, not
  ending in ``-``, at most 63 characters, optionally after a ``domain:`` prefix;
- dataset (:data:`DATASET_RULE`): letters, digits and ``_``, 1 to 1024 characters;
- table (:data:`TABLE_RULE`): Unicode letters, marks and digits, ``_``, ``-`` (and the other Unicode connector and
  dash punctuation) and inner spaces, 1 to 1024 characters.

Partition decorators (``table$20240101``) are refused: the names end up back-quoted in SQL (``CREATE OR REPLACE
TABLE``, ``MERGE``), which cannot take one, and nothing that could leave the back-quotes (quotes, ``;``, ``.``,
``$``, control characters) passes any rule.

This module is part of the cluster side (see :data:`kuberay_provider.pipelines.packaging.CLUSTER_SIDE`): it imports
nothing but the standard library and :mod:`kuberay_provider.errors`.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from kuberay_provider.errors import InvalidParameterError

MAX_NAME_LENGTH = 1024
"""The longest dataset or table name BigQuery takes."""

SHAPE_RULE = "must be a BigQuery table name [project.]dataset.table"
"""The shape every table parameter is told about (asset, lineage and job messages include it)."""
PROJECT_RULE = ("lower-case letters, digits and '-', starting with a letter or digit, not ending in '-', at most 63 "
                "characters, optionally after a domain prefix such as 'example.com:'")
DATASET_RULE = "letters, digits and '_', 1 to 1024 characters"
TABLE_RULE = ("letters, digits, '_', '-' and inner spaces (Unicode letters and marks included), 1 to 1024 "
              "characters; no quotes, '.', ';' or '$'")
FORMS_RULE = ("project.dataset.table, dataset.table (with a default project), project:dataset.table or "
              "domain.tld:project.dataset.table, optionally in back-quotes")
DECORATOR_RULE = (f"{SHAPE_RULE} without a partition decorator ('$...'): the SQL paths cannot take one; name the "
                  "table and filter on its partition column instead")
NO_PROJECT_RULE = "names no project: pass it as project.dataset.table (or give a default project)"

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_PROJECT_RE = re.compile(rf"(?:{_LABEL}(?:\.{_LABEL})*:)?{_LABEL}")
_DATASET_RE = re.compile(r"[A-Za-z0-9_]{1,1024}")
# Unicode categories of BigQuery's table-name characters: letters, marks, numbers, connector and dash punctuation.
_TABLE_CATEGORIES = ("L", "M", "N", "Pc", "Pd")


@dataclass(frozen=True)
class TableName:
    """A checked, fully qualified BigQuery table name."""

    project: str
    dataset: str
    table: str

    @property
    def id(self) -> str:
        """``project.dataset.table`` (``example.com:proj.dataset.table`` for a domain-scoped project)."""
        return f"{self.project}.{self.dataset}.{self.table}"

    def __str__(self) -> str:
        return self.id


def is_project_id(project: object) -> bool:
    """Whether ``project`` is a BigQuery project id (see :data:`PROJECT_RULE`)."""
    return isinstance(project, str) and _PROJECT_RE.fullmatch(project) is not None


def is_dataset_name(dataset: object) -> bool:
    """Whether ``dataset`` is a BigQuery dataset name (see :data:`DATASET_RULE`)."""
    return isinstance(dataset, str) and _DATASET_RE.fullmatch(dataset) is not None


def is_table_name(table: object) -> bool:
    """Whether ``table`` is a BigQuery table name without decorator (see :data:`TABLE_RULE`)."""
    if not isinstance(table, str) or not 1 <= len(table) <= MAX_NAME_LENGTH or table != table.strip(" "):
        return False
    return all(ch == " " or unicodedata.category(ch).startswith(_TABLE_CATEGORIES) for ch in table)


def split_table_name(value: object, *, param: str = "table") -> tuple[str | None, str, str]:
    """``(project or None, dataset, table)`` of a name in one of the accepted forms; shape only, no character rules.

    Raises :class:`InvalidParameterError` naming ``param`` for a non-string, an empty name, a partition decorator
    or a name of another shape.
    """
    if not isinstance(value, str) or not value.strip():
        raise InvalidParameterError(param, value, f"{SHAPE_RULE} (got an empty name)")
    text = value.strip()
    if len(text) >= 2 and text[0] == text[-1] == "`":
        text = text[1:-1].strip()
    if "$" in text:
        raise InvalidParameterError(param, value, DECORATOR_RULE)
    head, colon, rest = text.rpartition(":") if text.count(":") == 2 else text.partition(":")
    if not colon:  # [project.]dataset.table
        parts = text.split(".")
        if len(parts) == 2:
            return None, parts[0], parts[1]
        if len(parts) == 3:
            return parts[0], parts[1], parts[2]
    elif text.count(":") == 2:  # legacy domain-scoped: domain:project:dataset.table
        parts = rest.split(".")
        if len(parts) == 2:
            return head, parts[0], parts[1]
    else:
        parts = rest.split(".")
        if len(parts) == 2:  # legacy project:dataset.table
            return head, parts[0], parts[1]
        if len(parts) == 3:  # domain-scoped: domain.tld:project.dataset.table
            return f"{head}:{parts[0]}", parts[1], parts[2]
    raise InvalidParameterError(param, value, f"{SHAPE_RULE} ({FORMS_RULE})")


def parse_table_name(value: object, project: str | None = None, *, param: str = "table") -> TableName:
    """Check ``value`` (``[project.]dataset.table`` in any accepted form) and qualify it with ``project``.

    A name with its own project keeps it; ``project`` only fills a missing one. Raises
    :class:`InvalidParameterError` naming ``param`` and ``value`` with the rule broken.
    """
    own, dataset, table = split_table_name(value, param=param)
    chosen = own if own is not None else (project.strip() if isinstance(project, str) else project)
    if not chosen:
        raise InvalidParameterError(param, value, NO_PROJECT_RULE)
    _check_parts(value, chosen, dataset, table, param)
    return TableName(chosen, dataset, table)


def check_table_name(value: object, *, param: str = "table") -> str:
    """Check ``value`` like :func:`parse_table_name` where the project may still be missing (``dataset.table`` is
    accepted: the project is filled in later, e.g. from the job's ``--project``); returns ``value`` unchanged."""
    own, dataset, table = split_table_name(value, param=param)
    _check_parts(value, own, dataset, table, param)
    return str(value)


def _check_parts(value: object, project: str | None, dataset: str, table: str, param: str) -> None:
    """Raise naming ``param`` and ``value`` unless each part follows its rule (``project=None``: not checked)."""
    if project is not None and not is_project_id(project):
        raise InvalidParameterError(param, value, f"project {project!r} is not a BigQuery project id: {PROJECT_RULE}")
    if not is_dataset_name(dataset):
        raise InvalidParameterError(param, value, f"{SHAPE_RULE}: the dataset {dataset!r} must be {DATASET_RULE}")
    if not is_table_name(table):
        raise InvalidParameterError(param, value, f"{SHAPE_RULE}: the table {table!r} must be {TABLE_RULE}")


def qualify_table_name(value: object, project: str | None, *, param: str = "table") -> str:
    """``[project.]dataset.table`` → checked ``project.dataset.table`` (``project`` fills a missing one)."""
    return parse_table_name(value, project, param=param).id


__all__ = ("DATASET_RULE", "PROJECT_RULE", "SHAPE_RULE", "TABLE_RULE", "TableName", "check_table_name",
           "is_dataset_name", "is_project_id", "is_table_name", "parse_table_name", "qualify_table_name",
           "split_table_name")
