"""The seed command's pure parts: the generated data set, reading the endpoints from ``kuberay-local up``'s env file,
and argument errors. Fast: nothing is started (the end-to-end load runs in test_retraining_dag / test_jobs_integration)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from kuberay_provider.errors import InvalidParameterError
from kuberay_provider.local.cli import env_file_text
from kuberay_provider.pipelines import seed


@pytest.mark.parametrize("rows", [2_000, 20_000, 300_000])
def test_generate_about_rows_events_deterministically(rows: int) -> None:
    data = seed.generate(rows)
    assert abs(data.events.num_rows - rows) / rows < 0.05
    assert data.customers.num_rows == rows // seed.EVENTS_PER_CUSTOMER
    assert 0.15 < data.churn_rate < 0.6
    if rows == 2_000:
        assert seed.generate(rows).events.equals(data.events)
        assert not seed.generate(rows, seed=8).events.equals(data.events)


def test_events_fall_inside_the_window() -> None:
    import pyarrow.compute as pc

    end = datetime(2026, 11, 16, tzinfo=UTC)
    data = seed.generate(5_000, weeks=4, end=end)
    assert data.start == datetime(2026, 10, 19, tzinfo=UTC) and data.end == end
    low, high = pc.min_max(data.events.column("event_ts")).values()
    assert data.start <= low.as_py() and high.as_py() < end
    assert set(data.events.column("event_type").to_pylist()) == set(seed.EVENT_TYPES)


def test_env_file_round_trip(tmp_path: Path) -> None:
    """What ``kuberay-local up`` writes is what the seed reads (quoted JSON values included)."""
    env = {"KUBERAY_BQ_PROJECT": "local-project", "KUBERAY_BQ_REST_ENDPOINT": "http://127.0.0.1:9050",
           "AIRFLOW_CONN_KUBERNETES_DEFAULT": '{"conn_type": "kubernetes", "extra": {"a b": "c\'d"}}'}
    path = tmp_path / "env"
    path.write_text("# written by kuberay-local\n\n" + env_file_text(env) + "PLAIN=1\n")
    assert seed.read_env_file(path) == {**env, "PLAIN": "1"}
    args = seed.parse_args(["--env-file", str(path)])
    config = seed.bigquery_config(args)
    assert (config.project, config.rest_endpoint, config.grpc_endpoint) == ("local-project", "http://127.0.0.1:9050", None)
    assert seed.bigquery_config(seed.parse_args(["--env-file", str(path), "--project", "other-1"])).project == "other-1"


def test_env_file_errors_name_the_option_and_the_line(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameterError, match=r"--env-file=.*must be a readable file"):
        seed.read_env_file(tmp_path / "missing")
    bad = tmp_path / "env"
    bad.write_text("export A=1\nthis is not an assignment\n")
    with pytest.raises(InvalidParameterError, match=r"--env-file=.*env:2.*\[export\] KEY=VALUE"):
        seed.read_env_file(bad)


def test_without_endpoints_or_project_the_command_says_what_is_missing(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.delenv("KUBERAY_BQ_PROJECT", raising=False)
    empty = tmp_path / "env"
    empty.write_text("")
    assert seed.main(["--env-file", str(empty), "--rows", "100"]) == 2
    assert "KUBERAY_BQ_PROJECT" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "message"), [
    (["--rows", "0"], "--rows='0': must be ≥ 1"),
    (["--rows", "many"], "--rows='many': expected an integer"),
    (["--dataset", "raw-data"], "--dataset='raw-data': letters, digits and underscores only"),
    (["--events-table", "ev.ents"], "--events-table='ev.ents'"),
    (["--end", "yesterday"], "--end='yesterday': expected an ISO-8601 timestamp"),
])  # fmt: skip
def test_bad_arguments(argv: list[str], message: str, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        seed.parse_args(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_defaults_match_the_retraining_dag() -> None:
    args = seed.parse_args([])
    assert (args.dataset, args.events_table, args.customers_table) == ("churn_raw", "events", "customers")
    assert args.end == datetime(2026, 11, 16, tzinfo=UTC) and args.weeks * 7 == 56  # the DAG's feature_window_days
