"""Generate a realistic raw churn data set in code and load it into BigQuery (the emulator locally).

Two tables, deterministic for a given ``seed``:

- ``customers``: customer_id, signup_ts, plan, country, age.
- ``events``: event_id, customer_id, event_ts, event_type (login, page_view, purchase, support_ticket),
  session_id, amount (purchases only, else 0).

The churn signal is learnable but not trivial: every customer has a latent engagement; churn probability rises
with low engagement, the basic plan and many support tickets. A churner's activity thins out over the two weeks
before the churn time and then stops, so recency, frequency, trend and ticket share carry the signal.

Run it against the emulator of a running local stack (``kuberay-local up --dir DIR`` writes DIR/env with the
``KUBERAY_BQ_*`` endpoints; ``--env-file`` reads them, or ``source DIR/env`` first)::

    python -m kuberay_provider.pipelines.seed --env-file DIR/env --rows 300000 --dataset churn_raw \\
        --end 2026-11-16T00:00:00Z

The defaults (dataset ``churn_raw``, 8 weeks ending 2026-11-16) match what ``dags/ray_retraining.py`` reads for a
run with logical date 2026-11-16.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kuberay_provider.errors import InvalidParameterError
from kuberay_provider.pipelines.jobs._cli import positive_int_arg, timestamp_arg

if TYPE_CHECKING:
    import pyarrow as pa

    from kuberay_provider.bigquery.config import BigQueryConfig

PLANS = ("basic", "standard", "premium")
PLAN_P = (0.5, 0.35, 0.15)
COUNTRIES = ("US", "DE", "FR", "GB", "IN", "BR", "JP")
COUNTRY_P = (0.35, 0.15, 0.1, 0.12, 0.12, 0.1, 0.06)
EVENT_TYPES = ("login", "page_view", "purchase", "support_ticket")
DEFAULT_END = datetime(2026, 11, 16, tzinfo=UTC)
EVENTS_PER_CUSTOMER = 40  # on average over the window; sets the number of customers from --rows
DEFAULT_DATASET = "churn_raw"


@dataclass(frozen=True)
class SeedData:
    """The generated tables (Arrow) and the window they cover."""

    customers: pa.Table
    events: pa.Table
    start: datetime
    end: datetime
    churn_rate: float


def generate(rows: int, *, seed: int = 7, weeks: int = 8, end: datetime = DEFAULT_END,
             customers: int | None = None) -> SeedData:
    """Generate about ``rows`` events over ``weeks`` weeks ending at ``end``; same arguments, same tables."""
    import numpy as np
    import pyarrow as pa

    if rows < 1:
        raise ValueError(f"rows={rows!r}: must be ≥ 1")
    if weeks < 1:
        raise ValueError(f"weeks={weeks!r}: must be ≥ 1")
    rng = np.random.default_rng(seed)
    n = customers or max(10, rows // EVENTS_PER_CUSTOMER)
    end = end.astimezone(UTC)
    start = end - timedelta(weeks=weeks)
    window_s = (end - start).total_seconds()
    start_s = start.timestamp()

    # --- customers -------------------------------------------------------------------------------------
    ids = np.arange(1, n + 1, dtype=np.int64)
    plan_idx = rng.choice(len(PLANS), size=n, p=PLAN_P)
    country_idx = rng.choice(len(COUNTRIES), size=n, p=COUNTRY_P)
    age = rng.integers(18, 80, size=n)
    signup_s = start_s - rng.uniform(0, 730 * 86400, size=n)  # joined up to 2 years before the window
    engagement = rng.gamma(shape=2.0, scale=0.5, size=n)  # mean 1.0
    ticket_propensity = rng.beta(1.2, 12.0, size=n)
    new_customer = (start_s - signup_s) < 90 * 86400
    logit = (-1.2 - 1.6 * (engagement - 1.0) + 0.8 * (plan_idx == 0) - 0.6 * (plan_idx == 2)
             + 9.0 * (ticket_propensity - 0.09) + 0.5 * new_customer)
    churner = rng.random(n) < 1.0 / (1.0 + np.exp(-logit))
    # churners stop somewhere in the window (never in the first week, so they have history)
    churn_s = np.where(churner, start_s + rng.uniform(7 * 86400, window_s, size=n), np.inf)
    stop_s = np.minimum(churn_s, start_s + window_s)

    # --- events ----------------------------------------------------------------------------------------
    active_days = (stop_s - start_s) / 86400
    # Events per day, scaled so that the expected number of events kept after churners fade (below) is ``rows``.
    kept_days = active_days - churner * (0.6 * 7 + 0.35 * np.clip(active_days - 7, 0, 7))
    rate = engagement * rows / float(np.sum(engagement * kept_days))
    counts = rng.poisson(rate * active_days)
    owner = np.repeat(np.arange(n), counts)
    ts = start_s + rng.uniform(0, 1, size=owner.size) * (stop_s[owner] - start_s)
    # churners fade: drop half of their events in the 14 days before they leave, a third of those before that
    to_churn = churn_s[owner] - ts
    fade = np.where(to_churn < 7 * 86400, 0.6, np.where(to_churn < 14 * 86400, 0.35, 0.0))
    keep = rng.random(owner.size) >= fade
    owner, ts = owner[keep], ts[keep]
    order = np.lexsort((ts, owner))
    owner, ts = owner[order], ts[order]

    p_ticket = np.clip(ticket_propensity[owner] * np.where(churner[owner], 1.8, 1.0), 0.0, 0.6)
    p_purchase = np.where(plan_idx[owner] == 2, 0.12, 0.08)
    u = rng.random(owner.size)
    etype = np.where(u < p_ticket, 3, np.where(u < p_ticket + p_purchase, 2, np.where(u < p_ticket + p_purchase + 0.3, 0, 1)))
    plan_mult = np.array([1.0, 1.8, 3.5])[plan_idx[owner]]
    amount = np.where(etype == 2, np.round(rng.lognormal(3.0, 0.6, size=owner.size) * plan_mult, 2), 0.0)
    session = ids[owner] * 100_000 + ((ts - start_s) // 3600).astype(np.int64)  # one session per active hour

    customers_tbl = pa.table({
        "customer_id": pa.array(ids),
        "signup_ts": pa.array((signup_s * 1e6).astype(np.int64), type=pa.timestamp("us", tz="UTC")),
        "plan": pa.array(PLANS).take(pa.array(plan_idx)),
        "country": pa.array(COUNTRIES).take(pa.array(country_idx)),
        "age": pa.array(age.astype(np.int64)),
    })
    events_tbl = pa.table({
        "event_id": pa.array(np.arange(1, owner.size + 1, dtype=np.int64)),
        "customer_id": pa.array(ids[owner]),
        "event_ts": pa.array((ts * 1e6).astype(np.int64), type=pa.timestamp("us", tz="UTC")),
        "event_type": pa.array(EVENT_TYPES).take(pa.array(etype)),
        "session_id": pa.array(session),
        "amount": pa.array(amount.astype(np.float64)),
    })
    return SeedData(customers=customers_tbl, events=events_tbl, start=start, end=end, churn_rate=float(churner.mean()))


def load_table(client: Any, table: pa.Table, destination: str, workdir: Path) -> int:
    """Load an Arrow table into ``destination`` (replacing it) via a Parquet load job; returns the row count."""
    import pyarrow.parquet as pq
    from google.cloud import bigquery

    from kuberay_provider.bigquery.schema import arrow_to_bigquery_schema

    path = workdir / f"{destination.replace('.', '_')}.parquet"
    pq.write_table(table, path)
    # Delete, create with an explicit schema, then append: the emulator fails loads (truncating or not) into a
    # missing table instead of creating it from the Parquet schema as BigQuery does.
    client.delete_table(destination, not_found_ok=True)
    client.create_table(bigquery.Table(destination, schema=arrow_to_bigquery_schema(table.schema)))
    config = bigquery.LoadJobConfig(
        source_format=bigquery.SourceFormat.PARQUET, write_disposition=bigquery.WriteDisposition.WRITE_APPEND
    )
    with path.open("rb") as fh:
        client.load_table_from_file(fh, destination, job_config=config).result()
    return client.get_table(destination).num_rows


def seed_bigquery(data: SeedData, config: BigQueryConfig, dataset: str, *,
                  customers_table: str = "customers", events_table: str = "events") -> dict[str, int]:
    """Create ``dataset`` if needed and (re)load both tables; returns rows per table name."""
    from google.cloud import bigquery

    from kuberay_provider.bigquery.clients import bigquery_client

    client = bigquery_client(config)
    client.create_dataset(bigquery.Dataset(f"{config.project}.{dataset}"), exists_ok=True)
    with tempfile.TemporaryDirectory(prefix="kuberay-seed-") as tmp:
        return {
            name: load_table(client, tbl, f"{config.project}.{dataset}.{name}", Path(tmp))
            for name, tbl in ((customers_table, data.customers), (events_table, data.events))
        }


def read_env_file(path: str | os.PathLike[str]) -> dict[str, str]:
    """``KEY=VALUE`` / ``export KEY=VALUE`` lines (shell-quoted values, ``#`` comments), as ``kuberay-local up`` writes."""
    env: dict[str, str] = {}
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidParameterError("--env-file", str(path), f"must be a readable file ({exc.strerror})") from None
    for number, line in enumerate(text.splitlines(), 1):
        words = shlex.split(line, comments=True)
        if not words:
            continue
        if words[0] == "export":
            words = words[1:]
        if len(words) != 1 or "=" not in words[0] or not words[0].split("=", 1)[0].isidentifier():
            raise InvalidParameterError("--env-file", f"{path}:{number}", "every line must be [export] KEY=VALUE")
        key, value = words[0].split("=", 1)
        env[key] = value
    return env


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse and validate the CLI; errors name the argument."""
    parser = argparse.ArgumentParser(prog="python -m kuberay_provider.pipelines.seed", description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=positive_int_arg("--rows"), default=300_000, help="about this many events")
    parser.add_argument("--customers", type=positive_int_arg("--customers", 10), default=None,
                        help=f"number of customers (default rows/{EVENTS_PER_CUSTOMER})")
    parser.add_argument("--env-file", default=None,
                        help="read KUBERAY_BQ_* from this file (DIR/env of `kuberay-local up`) instead of the environment")
    parser.add_argument("--project", default=None, help="BigQuery project (default $KUBERAY_BQ_PROJECT)")
    parser.add_argument("--dataset", default=DEFAULT_DATASET, help=f"dataset to create / fill (default {DEFAULT_DATASET})")
    parser.add_argument("--customers-table", default="customers")
    parser.add_argument("--events-table", default="events")
    parser.add_argument("--weeks", type=positive_int_arg("--weeks"), default=8)
    parser.add_argument("--end", type=timestamp_arg("--end"), default=DEFAULT_END, help="end of the generated window")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    for flag, value in (("--dataset", args.dataset), ("--customers-table", args.customers_table),
                        ("--events-table", args.events_table)):  # fmt: skip
        if not value or not value.replace("_", "").isalnum():
            parser.error(f"{flag}={value!r}: letters, digits and underscores only")
    return args


def bigquery_config(args: argparse.Namespace) -> BigQueryConfig:
    """The target: ``--env-file`` (or the environment) for ``KUBERAY_BQ_*``, ``--project`` overriding the project."""
    from kuberay_provider.bigquery.config import BigQueryConfig

    environ = read_env_file(args.env_file) if args.env_file else None
    return BigQueryConfig.from_env(environ, **({"project": args.project} if args.project else {}))


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; prints a one-line JSON summary (tables, rows per table, window, seconds)."""
    args = parse_args(argv)
    began = time.monotonic()
    try:
        config = bigquery_config(args)
    except InvalidParameterError as exc:
        print(f"seed: {exc}", file=sys.stderr)
        return 2
    data = generate(args.rows, seed=args.seed, weeks=args.weeks, end=args.end, customers=args.customers)
    generated = time.monotonic() - began
    loaded = seed_bigquery(data, config, args.dataset, customers_table=args.customers_table, events_table=args.events_table)
    print(json.dumps({
        "dataset": f"{config.project}.{args.dataset}", "rows": loaded, "start": data.start.isoformat(),
        "end": data.end.isoformat(), "churn_rate": round(data.churn_rate, 4), "endpoint": config.rest_endpoint,
        "generate_seconds": round(generated, 2), "total_seconds": round(time.monotonic() - began, 2),
    }, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
