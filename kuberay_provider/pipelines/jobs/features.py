"""The features table's contract, shared by the ETL (producer) and the trainer (consumer). Standard library only."""

from __future__ import annotations

FEATURE_COLUMNS: tuple[str, ...] = (
    "n_events", "n_sessions", "active_days", "n_logins", "n_page_views", "n_purchases", "n_support_tickets",
    "spend_total", "spend_avg", "recency_days", "events_last_7d", "events_prev_7d", "trend_7d", "ticket_share",
    "tenure_days", "age", "plan_standard", "plan_premium",
)  # fmt: skip
"""Numeric model inputs, in model order."""

ID_COLUMNS: tuple[str, ...] = ("customer_id", "snapshot_ts")
"""Identify a row: the customer and the feature cutoff."""

LABEL_COLUMN = "label"
"""1 = churned (no activity in the label window), 0 = active."""
