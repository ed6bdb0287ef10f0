"""Argument helpers shared by the pipeline jobs: every error names the argument.

Standard library only, besides the provider's standard-library-only table-name rules
(``kuberay_provider.bigquery.names``, shipped with the jobs).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from kuberay_provider.bigquery.names import check_table_name, qualify_table_name
from kuberay_provider.errors import InvalidParameterError


def table_arg(name: str):
    """An argparse ``type=`` accepting ``[project.]dataset.table`` by the rules of
    ``kuberay_provider.bigquery.names`` (the project may be left to ``--project``); errors name ``name``."""

    def parse(value: str) -> str:
        try:
            return check_table_name(value, param=name).strip()
        except InvalidParameterError as exc:
            raise argparse.ArgumentTypeError(f"{name}={value!r}: {exc.rule}") from None

    return parse


def timestamp_arg(name: str):
    """An argparse ``type=`` accepting an ISO-8601 timestamp (``Z`` allowed); naive values are taken as UTC."""

    def parse(value: str) -> datetime:
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except (ValueError, AttributeError):
            raise argparse.ArgumentTypeError(
                f"{name}={value!r}: expected an ISO-8601 timestamp such as 2026-11-16T00:00:00+00:00"
            ) from None
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)

    return parse


def positive_int_arg(name: str, minimum: int = 1):
    """An argparse ``type=`` accepting an integer ≥ ``minimum``."""

    def parse(value: str) -> int:
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"{name}={value!r}: expected an integer") from None
        if number < minimum:
            raise argparse.ArgumentTypeError(f"{name}={value!r}: must be ≥ {minimum}")
        return number

    return parse


def fraction_arg(name: str):
    """An argparse ``type=`` accepting a float strictly between 0 and 1."""

    def parse(value: str) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"{name}={value!r}: expected a number") from None
        if not 0.0 < number < 1.0:
            raise argparse.ArgumentTypeError(f"{name}={value!r}: must be between 0 and 1 (exclusive)")
        return number

    return parse


def check_window(parser: argparse.ArgumentParser, start: datetime, end: datetime) -> None:
    """Exit with a usage error unless ``start < end``."""
    if not start < end:
        parser.error(f"--start={start.isoformat()} must be before --end={end.isoformat()}")


def qualify(table: str, project: str, name: str = "--project") -> str:
    """``dataset.table`` → ``project.dataset.table``; a name with its own project keeps it (legacy
    ``project:dataset.table`` comes back as ``project.dataset.table``). A missing or bad ``project`` exits with a
    usage-style error naming ``name``."""
    try:
        return qualify_table_name(table, project, param=name)
    except InvalidParameterError as exc:
        raise SystemExit(f"{name}={project!r} for {table!r}: {exc.rule}") from None


def print_summary(summary: dict[str, Any]) -> None:
    """Print the job's one-line JSON summary as the last stdout line."""
    sys.stdout.flush()
    print(json.dumps(summary, sort_keys=True, default=str), flush=True)
