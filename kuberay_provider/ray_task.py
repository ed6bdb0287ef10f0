"""What a ``@task.ray_job`` function needs on the Ray cluster, and the wire format between both sides.

Cluster side: standard library only, no Airflow and nothing else of this package. The Airflow side
(:mod:`kuberay_provider.decorators.ray_job`) embeds this module's source, compressed, in the RayJob's entrypoint
together with the function's source and its JSON arguments, so a stock ``rayproject/ray`` image runs it with no
custom image and no staging. The driver runs the function and prints its JSON return value between result markers;
the operator reads them back from the driver log (the K8sJobMode submitter pod's log, which outlives the cluster),
so the value reaches XCom in deferrable mode and after a re-attach too.
"""

from __future__ import annotations

import base64
import json
import linecache
import sys
import traceback
import types
import zlib
from collections.abc import Iterable
from typing import Any

RESULT_MARKER = "KUBERAY_TASK_RESULT"
#: characters of base64 per result line (log lines stay far below the 16 KiB a container runtime splits at)
RESULT_CHUNK = 4000
#: exit status of a driver whose function raised or returned something that cannot be sent back
FAILED_EXIT = 1


class ResultError(ValueError):
    """The driver log holds no complete, decodable result."""


def encode(value: Any) -> str:
    """JSON, zlib, base64: what travels in the entrypoint (payloads) or the log (results)."""
    return base64.b64encode(zlib.compress(json.dumps(value, separators=(",", ":")).encode(), 9)).decode("ascii")


def decode(text: str) -> Any:
    """The inverse of :func:`encode`."""
    return json.loads(zlib.decompress(base64.b64decode(text.encode("ascii"))).decode())


def result_lines(value: Any, limit_bytes: int) -> list[str]:
    """The marker lines that carry ``value`` (JSON) back; ValueError above ``limit_bytes`` of JSON, TypeError if not
    JSON-serialisable."""
    text = json.dumps(value)
    size = len(text.encode())
    if size > limit_bytes:
        raise ValueError(f"the return value is {size} bytes of JSON, above the limit of {limit_bytes} bytes: return a "
                         "reference (a table or a gs:// URI) to large results instead")
    blob = encode(value)
    chunks = [blob[i:i + RESULT_CHUNK] for i in range(0, len(blob), RESULT_CHUNK)] or [""]
    return [f"{RESULT_MARKER} {index}/{len(chunks)} {chunk}" for index, chunk in enumerate(chunks, 1)]


def parse_result(lines: Iterable[str]) -> Any:
    """The return value from the driver log's marker lines (the last complete result wins: a retried driver
    prints its own)."""
    found: Any = None
    complete = False
    chunks: list[str] = []
    for line in lines:
        start = line.find(RESULT_MARKER + " ")
        if start < 0:
            continue
        position, _, chunk = line[start + len(RESULT_MARKER) + 1:].strip().partition(" ")
        index, _, count = position.partition("/")
        if not (index.isdigit() and count.isdigit()):
            continue
        if int(index) == 1:
            chunks = []
        if int(index) != len(chunks) + 1:
            chunks = []
            continue
        chunks.append(chunk.strip())
        if int(index) == int(count):
            try:
                found, complete = decode("".join(chunks)), True
            except (ValueError, zlib.error) as exc:
                raise ResultError(f"the driver printed a result that cannot be decoded: {exc}") from exc
            chunks = []
    if not complete:
        raise ResultError(f"the driver log holds no complete {RESULT_MARKER} lines")
    return found


def run(payload: dict[str, Any]) -> int:
    """Run the shipped function: define it from its source, call it, print its result. Returns the exit status."""
    filename = f"<@task.ray_job {payload['task_id']}: {payload['name']}>"
    source = payload["source"]
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)  # source lines in tracebacks
    module = types.ModuleType("__ray_task__")
    module.__file__ = filename
    sys.modules["__ray_task__"] = module
    try:
        exec(compile(source, filename, "exec"), module.__dict__)  # the user's own function, shipped by their DAG
        result = module.__dict__[payload["name"]](*payload["args"], **payload["kwargs"])
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        return FAILED_EXIT
    try:
        lines = result_lines(result, payload["limit_bytes"])
    except (TypeError, ValueError) as exc:
        print(f"@task.ray_job {payload['name']}: cannot return the value: {exc}", file=sys.stderr, flush=True)
        return FAILED_EXIT
    sys.stdout.flush()
    print("\n".join(lines), flush=True)
    return 0


def main(encoded_payload: str) -> None:
    """Driver entry point (what the entrypoint's bootstrap calls)."""
    sys.exit(run(decode(encoded_payload)))
