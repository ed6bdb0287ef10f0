"""The retraining quality gate's pure decision (``pipelines/jobs/gate.py``) and the training job's CLI for it."""

from __future__ import annotations

import json
import math

import pytest

from kuberay_provider.pipelines.jobs.gate import (
    GATE_METRICS,
    champion_pointer,
    champion_pointer_uri,
    check_margin,
    decide,
)


def test_no_champion_yet_promotes() -> None:
    decision = decide(0.81, None, margin=0.05)
    assert decision.promote and "no champion yet" in decision.reason
    assert decision.as_dict()["decision"] == "promoted"


@pytest.mark.parametrize(("candidate", "champion", "margin", "promote"), [
    (0.85, 0.80, 0.0, True),
    (0.85, 0.80, 0.05, True),    # exactly the margin: met (0.85 - 0.80 is 0.04999… in floats)
    (0.83, 0.82, 0.01, True),    # 0.00999… is the margin up to rounding
    (0.849, 0.80, 0.05, False),  # better, but not by the margin
    (0.80, 0.80, 0.0, False),    # equal is not better, even with no margin
    (0.79, 0.80, 0.0, False),
    (0.95, 0.80, 1.0, False),    # a margin no AUC can meet holds every model back
])  # fmt: skip
def test_higher_is_better_metrics(candidate: float, champion: float, margin: float, promote: bool) -> None:
    for metric in ("auc", "accuracy"):
        decision = decide(candidate, champion, metric=metric, margin=margin)
        assert decision.promote is promote, decision
        assert decision.as_dict()["decision"] == ("promoted" if promote else "challenger")
        assert f"champion {champion:.4f}" in decision.reason and f"margin {margin:g}" in decision.reason
        assert ("promoted" if promote else "kept as challenger") in decision.reason


def test_log_loss_is_lower_is_better() -> None:
    assert decide(0.30, 0.40, metric="logloss", margin=0.05).promote
    held = decide(0.38, 0.40, metric="logloss", margin=0.05)
    assert not held.promote and "+0.0200 (lower is better)" in held.reason
    assert not decide(0.45, 0.40, metric="logloss").promote
    assert GATE_METRICS == {"auc": True, "accuracy": True, "logloss": False}


def test_an_undefined_candidate_never_promotes_and_an_undefined_champion_is_no_champion() -> None:
    assert not decide(None, 0.7).promote and "undefined" in decide(None, 0.7).reason
    assert not decide(math.nan, None).promote
    assert decide(0.6, math.nan).promote  # a champion row without the metric cannot block a defined one


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"metric": "f1"}, "gate_metric='f1': must be one of ['accuracy', 'auc', 'logloss']"),
    ({"margin": -0.1}, "promotion_margin=-0.1: must be a finite number ≥ 0"),
    ({"margin": math.inf}, "promotion_margin=inf: must be a finite number ≥ 0"),
    ({"margin": "much"}, "promotion_margin='much': must be a number ≥ 0"),
    ({"margin": True}, "promotion_margin=True: must be a finite number ≥ 0"),
])  # fmt: skip
def test_bad_gate_settings_name_the_parameter(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError) as exc:
        decide(0.8, 0.7, **kwargs)
    assert str(exc.value) == message


def test_margins_as_the_dag_param_renders_them() -> None:
    assert check_margin("0.02") == 0.02 and check_margin(0) == 0.0 and check_margin("1") == 1.0


@pytest.mark.parametrize(("model_uri", "pointer"), [
    ("/models/churn/20261116", "/models/churn/champion.json"),
    ("/models/churn/20261116/", "/models/churn/champion.json"),
    ("gs://bucket/models/churn/20261116", "gs://bucket/models/churn/champion.json"),
    ("file:///tmp/m/r1", "file:///tmp/m/champion.json"),
])  # fmt: skip
def test_champion_pointer_sits_next_to_the_model_directory(model_uri: str, pointer: str) -> None:
    assert champion_pointer_uri(model_uri) == pointer


@pytest.mark.parametrize("model_uri", ["model", "gs://bucket", "gs://"])
def test_a_model_uri_without_a_parent_needs_an_explicit_pointer(model_uri: str) -> None:
    with pytest.raises(ValueError, match=f"model_uri={model_uri!r}: needs a parent directory"):
        champion_pointer_uri(model_uri)


def test_champion_pointer_content_is_json() -> None:
    decision = decide(0.9, 0.8, margin=0.05)
    pointer = champion_pointer(run_id="r2", model_uri="gs://b/m/r2/model.json", decision=decision,
                               promoted_at="2026-11-16T00:00:00+00:00")
    assert json.loads(json.dumps(pointer)) == {
        "run_id": "r2", "model_uri": "gs://b/m/r2/model.json", "metric": "auc", "value": 0.9, "previous_value": 0.8,
        "margin": 0.05, "promoted_at": "2026-11-16T00:00:00+00:00", "reason": decision.reason}


def test_the_training_cli_validates_the_gate_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    from kuberay_provider.pipelines.jobs.churn_train import parse_args

    base = ["--features-table", "d.f", "--metrics-table", "d.m", "--predictions-table", "d.p", "--model-uri", "/m/r1"]
    for extra, message in ((["--promotion-margin", "-1"], "--promotion-margin='-1': must be a finite number ≥ 0"),
                           (["--gate-metric", "f1"], "--gate-metric: invalid choice: 'f1'"),
                           (["--model-uri", "model"], "--champion-uri is needed")):  # fmt: skip
        with pytest.raises(SystemExit):
            parse_args(base + extra)
        assert message in capsys.readouterr().err
