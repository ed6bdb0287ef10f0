"""One set of BigQuery table-name rules: every entry point gives the same verdict for the same name.

The four places that take ``[project.]dataset.table`` — the cluster-side ``TableRef.parse`` (BigQuery I/O), the
shipped jobs' argparse types (``table_arg`` + ``qualify``), the Airflow-side asset URIs and lineage names — all go
through :mod:`kuberay_provider.bigquery.names`; a name valid in one is valid in all (and qualifies to the same
``project.dataset.table``), a bad one is refused by all, each error naming its own parameter and the value.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import pytest

from kuberay_provider.bigquery.config import BigQueryConfig
from kuberay_provider.bigquery.names import parse_table_name
from kuberay_provider.errors import InvalidParameterError
from kuberay_provider.lineage import bigquery_table_name
from kuberay_provider.pipelines.assets import bigquery_asset_uri
from kuberay_provider.pipelines.jobs._cli import qualify, table_arg

DEFAULT_PROJECT = "default-proj"

VALID = [  # (name, the qualified project.dataset.table every entry point makes of it)
    ("p.d.t", "p.d.t"),
    ("proj-1.churn.features", "proj-1.churn.features"),
    ("example.com:proj.d.t", "example.com:proj.d.t"),      # domain-scoped project
    ("example.com:proj:d.t", "example.com:proj.d.t"),      # legacy domain-scoped
    ("proj:d.t", "proj.d.t"),                              # legacy project:dataset.table
    ("`p.d.t`", "p.d.t"),
    ("  p.d.t \n", "p.d.t"),
    ("d.t", f"{DEFAULT_PROJECT}.d.t"),                     # the project is filled in
    ("p.d.tábla", "p.d.tábla"),                            # Unicode letters in table names
    ("p.d.my table", "p.d.my table"),                      # inner spaces in table names
    ("p.D_1.t-1_x", "p.D_1.t-1_x"),
    ("1p.d.t", "1p.d.t"),                                  # project ids may start with a digit
    (f"{'a' * 63}.{'d' * 1024}.{'t' * 1024}", f"{'a' * 63}.{'d' * 1024}.{'t' * 1024}"),
]  # fmt: skip

INVALID = [  # (name, a fragment of the rule every entry point reports)
    ("a.b.c.d", "[project.]dataset.table"),
    ("features", "[project.]dataset.table"),
    ("p.da-ta.t", "the dataset 'da-ta'"),
    ("p.d.t;drop", "the table 't;drop'"),
    ("p.d.t` AS SELECT 1; --", "the table"),
    ("p.d.t$20240101", "partition decorator"),
    ("Bad_Project.d.t", "is not a BigQuery project id"),
    ("proj-.d.t", "is not a BigQuery project id"),
    (f"{'a' * 64}.d.t", "is not a BigQuery project id"),
    ("p.d.", "the table ''"),
    ("p..t", "the dataset ''"),
    ("p.d. t", "the table ' t'"),                          # spaces only inside a table name
    ("p.d.t\nx", "the table"),
    ("", "[project.]dataset.table"),
]  # fmt: skip


def _table_ref(name: str) -> str:
    from kuberay_provider.bigquery.storage import TableRef

    return TableRef.parse(name, BigQueryConfig(project=DEFAULT_PROJECT), "destination").id


def _job_argument(name: str) -> str:
    try:
        checked = table_arg("--features-table")(name)
    except argparse.ArgumentTypeError as exc:  # argparse shows this text, naming the argument
        raise InvalidParameterError("--features-table", name, str(exc)) from None
    return qualify(checked, DEFAULT_PROJECT)


def _asset(name: str) -> str:
    uri = bigquery_asset_uri(name, DEFAULT_PROJECT, param="asset_tables['features']")
    project, dataset, table = uri.removeprefix("bigquery://").split("/")
    return f"{project}.{dataset}.{table}"


def _lineage(name: str) -> str:
    return bigquery_table_name(name, DEFAULT_PROJECT, param="bigquery_outputs")


ENTRY_POINTS: dict[str, tuple[Callable[[str], str], str]] = {
    "TableRef.parse": (_table_ref, "destination"),
    "job table_arg": (_job_argument, "--features-table"),
    "asset uri": (_asset, "asset_tables['features']"),
    "lineage": (_lineage, "bigquery_outputs"),
}


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
@pytest.mark.parametrize(("name", "qualified"), VALID, ids=[repr(n)[:40] for n, _ in VALID])
def test_every_entry_point_accepts_a_valid_name_alike(entry: str, name: str, qualified: str) -> None:
    parse, _ = ENTRY_POINTS[entry]
    assert parse(name) == qualified


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
@pytest.mark.parametrize(("name", "rule"), INVALID, ids=[repr(n)[:40] for n, _ in INVALID])
def test_every_entry_point_refuses_a_bad_name_naming_parameter_and_value(entry: str, name: str, rule: str) -> None:
    parse, parameter = ENTRY_POINTS[entry]
    with pytest.raises(InvalidParameterError) as exc:
        parse(name)
    message = str(exc.value)
    assert parameter in message and repr(name) in message, message
    if not (entry == "lineage" and name == ""):  # lineage says "rendered": an empty name is an unrendered value
        assert rule in message, message


def test_partition_decorators_are_refused_saying_why() -> None:
    with pytest.raises(InvalidParameterError, match=r"partition decorator.*SQL paths cannot take one"):
        parse_table_name("p.d.t$20240101")


def test_a_name_without_project_needs_a_default() -> None:
    with pytest.raises(InvalidParameterError, match="names no project"):
        parse_table_name("d.t", None, param="destination")
    with pytest.raises(SystemExit, match="--project"):
        qualify("d.t", "")
    with pytest.raises(SystemExit, match="is not a BigQuery project id"):
        qualify("d.t", "Bad Project")


def test_the_shipped_job_arguments_keep_the_given_text() -> None:
    """``table_arg`` checks but does not qualify: ``--project`` may still fill the project in."""
    assert table_arg("--features-table")(" churn.features ") == "churn.features"
    assert table_arg("--features-table")("proj:churn.features") == "proj:churn.features"
    assert qualify("proj:churn.features", DEFAULT_PROJECT) == "proj.churn.features"
