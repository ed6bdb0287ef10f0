"""The retraining quality gate (pure, standard library only; runs inside the training job on the Ray cluster).

A new model is **promoted** to champion only when its holdout metric beats the current champion's by at least
``margin`` (and is strictly better); otherwise it stays a **challenger**. The champion is the newest
``split = 'champion'`` row of the metrics table (:data:`CHAMPION_SPLIT`); a promotion appends such a row and writes
the champion pointer (:func:`champion_pointer`) next to the model directories. A held-back run is not a failure.
"""

from __future__ import annotations

import math
import posixpath
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

#: metric -> True when higher is better (the holdout metrics ``churn_train`` computes).
GATE_METRICS: Mapping[str, bool] = {"auc": True, "accuracy": True, "logloss": False}
DEFAULT_GATE_METRIC = "auc"
CHAMPION_SPLIT = "champion"
CHAMPION_FILE = "champion.json"
_TOLERANCE = 1e-12  # 0.83 - 0.82 is 0.00999…: a margin met up to float rounding is met


@dataclass(frozen=True)
class GateDecision:
    """The outcome of :func:`decide`: ``promote`` and a one-line human ``reason`` (it goes into the task log)."""

    promote: bool
    reason: str
    metric: str
    candidate: float | None
    champion: float | None
    margin: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (for the job summary and the model metadata)."""
        return {**asdict(self), "decision": "promoted" if self.promote else "challenger"}


def check_metric(metric: Any) -> str:
    """Validate a gate metric name; raises ``ValueError`` naming the parameter, the value and the choices."""
    if metric not in GATE_METRICS:
        raise ValueError(f"gate_metric={metric!r}: must be one of {sorted(GATE_METRICS)}")
    return str(metric)


def check_margin(margin: Any) -> float:
    """Validate a promotion margin: a finite number ≥ 0 (in the metric's own units, e.g. 0.01 AUC)."""
    try:
        value = float(margin)
    except (TypeError, ValueError):
        raise ValueError(f"promotion_margin={margin!r}: must be a number ≥ 0") from None
    if isinstance(margin, bool) or not math.isfinite(value) or value < 0:
        raise ValueError(f"promotion_margin={margin!r}: must be a finite number ≥ 0")
    return value


def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def decide(candidate: float | None, champion: float | None, *, metric: str = DEFAULT_GATE_METRIC,
           margin: float = 0.0) -> GateDecision:
    """Compare the candidate's holdout ``metric`` with the champion's (``None``: there is no champion yet).

    Promote iff there is no champion, or the candidate is strictly better and better by at least ``margin``
    (higher for AUC/accuracy, lower for log loss). An undefined candidate metric (e.g. AUC of a one-class
    holdout) never promotes.
    """
    metric, margin = check_metric(metric), check_margin(margin)
    new, old = _number(candidate), _number(champion)
    decision = {"metric": metric, "candidate": new, "champion": old, "margin": margin}
    if new is None:
        return GateDecision(False, f"the new model's holdout {metric} is undefined; kept as challenger", **decision)
    if old is None:
        return GateDecision(True, f"no champion yet: promoted with holdout {metric} {new:.4f}", **decision)
    gain = new - old if GATE_METRICS[metric] else old - new
    better = "higher" if GATE_METRICS[metric] else "lower"
    if gain > 0 and gain >= margin - _TOLERANCE:
        return GateDecision(True, f"holdout {metric} {new:.4f} vs champion {old:.4f}: {gain:+.4f} ({better} is better) "
                                  f"meets the margin {margin:g}; promoted", **decision)
    return GateDecision(False, f"holdout {metric} {new:.4f} vs champion {old:.4f}: {gain:+.4f} ({better} is better) "
                               f"does not beat the champion by the margin {margin:g}; kept as challenger", **decision)


def champion_pointer_uri(model_uri: str) -> str:
    """Where the champion pointer lives: ``champion.json`` next to the model's directory (``<root>/<run>/`` →
    ``<root>/champion.json``), for a path, ``file://`` or ``gs://`` URI."""
    base = model_uri.rstrip("/")
    parent = posixpath.dirname(base)
    if not parent or parent.endswith(":") or parent.endswith(":/"):
        raise ValueError(f"model_uri={model_uri!r}: needs a parent directory to hold {CHAMPION_FILE}")
    return f"{parent.rstrip('/')}/{CHAMPION_FILE}"


def champion_pointer(*, run_id: str, model_uri: str, decision: GateDecision, promoted_at: str) -> dict[str, Any]:
    """The champion pointer's content (JSON): which model serves, why, and the metric it won with."""
    return {"run_id": run_id, "model_uri": model_uri, "metric": decision.metric, "value": decision.candidate,
            "previous_value": decision.champion, "margin": decision.margin, "promoted_at": promoted_at,
            "reason": decision.reason}  # fmt: skip
