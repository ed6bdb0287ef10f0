"""Errors raised by the BigQuery I/O layer. No heavy imports."""

from __future__ import annotations


class BigQueryIOError(RuntimeError):
    """A BigQuery read or write failed.

    The message names the table (and column when known) and BigQuery's own reason.
    ``table`` and ``reason`` are kept as attributes for callers that branch on them.
    """

    def __init__(self, message: str, *, table: str | None = None, reason: str | None = None) -> None:
        super().__init__(message)
        self.table = table
        self.reason = reason

    def __reduce__(self):  # keep picklable across Ray / Spark process boundaries
        return (_rebuild, (str(self), self.table, self.reason))


def _rebuild(message: str, table: str | None, reason: str | None) -> BigQueryIOError:
    return BigQueryIOError(message, table=table, reason=reason)
