"""Container logs stored the way the kubelet stores them (CRI format), rendered the way the log endpoint serves them.

A CRI log line is ``<RFC 3339 nano timestamp> <stdout|stderr> <F|P> <text>``. Keeping the timestamp per line lets the
API server answer ``timestamps=true`` (each line prefixed with its timestamp, as kubelet does) and ``sinceSeconds``
exactly, which Airflow's ``PodManager.fetch_container_logs`` relies on to resume a followed log without duplicates.
"""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path


def rfc3339_nano(when: dt.datetime | None = None) -> str:
    """``2026-11-22T15:17:46.123456000Z`` (kubelet prints nanoseconds; Python has microseconds)."""
    when = when or dt.datetime.now(dt.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


def _parse_time(text: bytes) -> dt.datetime | None:
    try:
        raw = text.decode("ascii").rstrip("Z")
        base, _, frac = raw.partition(".")
        parsed = dt.datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=dt.UTC)
        return parsed + dt.timedelta(microseconds=int((frac + "000000")[:6]) if frac else 0)
    except (UnicodeDecodeError, ValueError):
        return None


class CRILogWriter:
    """Append lines of a container's stdout/stderr to a CRI-format log file (thread-safe)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.touch()
        self._lock = threading.Lock()

    def write(self, stream: str, line: bytes) -> None:
        """Record one line (without or with its trailing newline) written to ``stream`` (``stdout``/``stderr``)."""
        text = line.rstrip(b"\n").replace(b"\r", b"")
        record = f"{rfc3339_nano()} {stream} F ".encode() + text + b"\n"
        with self._lock, self.path.open("ab") as fh:
            fh.write(record)


def complete_lines(data: bytes) -> bytes:
    """The prefix of ``data`` that ends with a newline (a CRI record is only served once fully written)."""
    return data[: data.rfind(b"\n") + 1]


def render(data: bytes, *, timestamps: bool = False, since_seconds: int | None = None,
           tail_lines: int | None = None, now: dt.datetime | None = None) -> bytes:
    """Turn CRI records into what ``GET pods/<name>/log`` returns.

    ``timestamps`` prefixes each line with its RFC 3339 timestamp and a space; ``since_seconds`` keeps the lines
    written in the last that many seconds; ``tail_lines`` keeps the last that many lines (after ``since_seconds``).
    """
    cutoff = None
    if since_seconds is not None and since_seconds > 0:
        cutoff = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(seconds=since_seconds)
    out: list[bytes] = []
    for record in complete_lines(data).splitlines():
        stamp, _, rest = record.partition(b" ")
        _stream, _, rest = rest.partition(b" ")
        _tag, _, text = rest.partition(b" ")
        if cutoff is not None:
            when = _parse_time(stamp)
            if when is not None and when < cutoff:
                continue
        out.append((stamp + b" " + text if timestamps else text) + b"\n")
    if tail_lines is not None:
        out = out[-tail_lines:] if tail_lines > 0 else []
    return b"".join(out)
