"""How the local spark-operator double turns a SparkApplication spec into a local ``spark-submit`` run.

Validation mirrors what makes a real submission fail (the CRD's required fields, an unsupported application type or a
``mainApplicationFile`` that cannot be fetched), :func:`build_command` mirrors spark-operator's mapping of the spec to
``spark-submit`` arguments (``sparkConf``, ``hadoopConf`` as ``spark.hadoop.*``, ``deps``, ``arguments``, driver
cores/memory/javaOptions/env) with ``--master local[N]`` instead of ``k8s://``, and :class:`SparkProcess` runs it as
its own process group with stdout/stderr captured into a CRI-format container log.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kuberay_provider.local.podlogs import CRILogWriter

JSON = dict[str, Any]
SUPPORTED_TYPES = ("Python", "Scala", "Java")
MAX_LOCAL_CORES = 2
# Settings the double always forces: no UI, loopback only, its own scratch space.
FORCED_CONF = {"spark.ui.enabled": "false", "spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1",
               "spark.ui.showConsoleProgress": "false"}
# JVM flags for fast start-up of small local jobs (~30 s -> ~18 s for a trivial PySpark job on a busy 2-core host);
# they come first, so a spec's own extraJavaOptions/javaOptions override them.
LOCAL_JAVA_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


class SubmissionError(ValueError):
    """The application cannot be submitted (spark-operator's ``SUBMISSION_FAILED``)."""


def spark_submit_path() -> Path:
    """``spark-submit`` of the installed pyspark (the venv's ``bin/`` wrapper when present)."""
    beside = Path(sys.executable).parent / "spark-submit"
    if beside.exists():
        return beside
    spec = importlib.util.find_spec("pyspark")
    if spec is None or not spec.submodule_search_locations:
        raise SubmissionError("pyspark is not installed: no spark-submit available")
    return Path(next(iter(spec.submodule_search_locations))) / "bin" / "spark-submit"


def local_path(uri: str) -> Path:
    """Map ``local:///p``, ``file:///p`` or a plain path to a local file; other schemes cannot be fetched offline."""
    for scheme in ("local://", "file://"):
        if uri.startswith(scheme):
            return Path(uri[len(scheme):])
    if "://" in uri:
        raise SubmissionError(f"cannot fetch {uri!r}: only local://, file:// and plain paths work on the local stack")
    return Path(uri)


def validate(spec: Any) -> list[str]:
    """Reasons the spec cannot be submitted (empty if it can)."""
    if not isinstance(spec, dict):
        return ["spec: Required value"]
    errors = [f"spec.{key}: Required value" for key in ("type", "sparkVersion", "driver", "executor")
              if not spec.get(key)]
    app_type = spec.get("type")
    if app_type and app_type not in (*SUPPORTED_TYPES, "R"):
        errors.append(f'spec.type: Unsupported value: "{app_type}": supported values: "Java", "Python", "Scala", "R"')
    elif app_type == "R":
        errors.append("spec.type: R applications are not supported by the local spark-operator double")
    if app_type in ("Scala", "Java") and not spec.get("mainClass"):
        errors.append(f"spec.mainClass: Required value for type {app_type}")
    main = spec.get("mainApplicationFile")
    if not main:
        errors.append("spec.mainApplicationFile: Required value")
    else:
        try:
            local_path(str(main))
        except SubmissionError as err:
            errors.append(f"spec.mainApplicationFile: {err}")
    mode = spec.get("mode", "cluster")
    if mode not in ("cluster", "client", "in-cluster-client"):
        errors.append(f'spec.mode: Unsupported value: "{mode}"')
    return errors


def local_cores(spec: JSON) -> int:
    """``N`` of ``local[N]``: the driver's cores, at least 1, capped at 2."""
    try:
        cores = int(float((spec.get("driver") or {}).get("cores") or 1))
    except (TypeError, ValueError):
        cores = 1
    return max(1, min(cores, MAX_LOCAL_CORES))


def driver_env(spec: JSON) -> dict[str, str]:
    """``spec.driver.env`` (plain values; ``valueFrom`` cannot be resolved locally) and the deprecated ``envVars``."""
    driver = spec.get("driver") or {}
    env = {str(k): str(v) for k, v in (driver.get("envVars") or {}).items()}
    for item in driver.get("env") or []:
        if isinstance(item, dict) and item.get("name") and "value" in item:
            env[str(item["name"])] = str(item["value"])
    return env


def _deps(spec: JSON, key: str) -> list[str]:
    return [str(local_path(str(u))) for u in (spec.get("deps") or {}).get(key) or []]


def build_command(spec: JSON, *, app_name: str, app_id: str, work_dir: Path) -> list[str]:
    """The ``spark-submit`` argument list for ``spec`` (no shell involved)."""
    driver = spec.get("driver") or {}
    conf: dict[str, str] = {str(k): str(v) for k, v in (spec.get("sparkConf") or {}).items()}
    conf.update({f"spark.hadoop.{k}": str(v) for k, v in (spec.get("hadoopConf") or {}).items()})
    conf.pop("spark.master", None)
    conf.update(FORCED_CONF)
    conf["spark.app.id"] = app_id
    conf["spark.local.dir"] = str(work_dir / "local")
    java_opts = " ".join(filter(None, [LOCAL_JAVA_OPTIONS, conf.get("spark.driver.extraJavaOptions"),
                                      driver.get("javaOptions"),
                                      f"-Djava.io.tmpdir={work_dir / 'tmp'}"]))
    conf["spark.driver.extraJavaOptions"] = java_opts
    cmd = [str(spark_submit_path()), "--master", f"local[{local_cores(spec)}]", "--name", app_name]
    if driver.get("memory"):
        cmd += ["--driver-memory", str(driver["memory"])]
    for flag, key in (("--py-files", "pyFiles"), ("--jars", "jars"), ("--files", "files")):
        if values := _deps(spec, key):
            cmd += [flag, ",".join(values)]
    if packages := (spec.get("deps") or {}).get("packages"):
        cmd += ["--packages", ",".join(map(str, packages))]
    if spec.get("mainClass") and spec.get("type") != "Python":
        cmd += ["--class", str(spec["mainClass"])]
    for key, value in sorted(conf.items()):
        cmd += ["--conf", f"{key}={value}"]
    cmd.append(str(local_path(str(spec["mainApplicationFile"]))))
    cmd += [str(a) for a in spec.get("arguments") or []]
    return cmd


def process_env(spec: JSON, work_dir: Path) -> dict[str, str]:
    """The driver's environment: this process's, ``spec.driver.env``, then the double's loopback/temp settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYSPARK_", "SPARK_CONF"))}
    env.update(driver_env(spec))
    env.update(SPARK_LOCAL_IP="127.0.0.1", PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable,
               TMPDIR=str(work_dir / "tmp"), PYTHONUNBUFFERED="1")
    return env


@dataclass
class SparkProcess:
    """One running ``spark-submit``: its own session/process group, output copied to a CRI log."""

    argv: list[str]
    env: dict[str, str]
    work_dir: Path
    log: CRILogWriter
    on_exit: Callable[[], None] = lambda: None
    proc: asyncio.subprocess.Process | None = None
    exit_code: int | None = None
    killed: bool = False
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def pid(self) -> int | None:
        """PID of ``spark-submit`` (also its process group and session id)."""
        return self.proc.pid if self.proc else None

    async def start(self) -> None:
        """Spawn the process (new session, so the whole tree can be signalled) and start copying its output."""
        for sub in ("local", "tmp"):
            (self.work_dir / sub).mkdir(parents=True, exist_ok=True)
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv, cwd=self.work_dir, env=self.env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, start_new_session=True,
            limit=1024 * 1024)
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._tasks = [asyncio.create_task(self._copy(self.proc.stdout, "stdout")),
                       asyncio.create_task(self._copy(self.proc.stderr, "stderr"))]
        self._tasks.append(asyncio.create_task(self._wait()))

    async def _copy(self, stream: asyncio.StreamReader, name: str) -> None:
        while True:
            try:
                line = await stream.readline()
            except ValueError:  # a line longer than the limit: take what is buffered
                line = await stream.read(1024 * 1024)
            if not line:
                return
            self.log.write(name, line)

    async def _wait(self) -> None:
        assert self.proc is not None
        code = await self.proc.wait()
        await asyncio.gather(*self._tasks[:2], return_exceptions=True)
        # A signal shows as a negative return code; a container runtime reports 128 + signal.
        self.exit_code = code if code >= 0 else 128 - code
        self.on_exit()

    @property
    def done(self) -> bool:
        """Whether the process exited and its output is fully copied."""
        return self.exit_code is not None

    async def kill(self, grace: float = 5.0) -> None:
        """SIGTERM the process group, SIGKILL it after ``grace`` seconds, then kill any straggler of the session."""
        if self.proc is None:
            return
        self.killed = True
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), grace)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                await self.proc.wait()
        kill_session(self.proc.pid)
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def kill_now(self) -> None:
        """Synchronous SIGKILL of everything in the session (interpreter exit)."""
        if self.proc is not None:
            kill_session(self.proc.pid)


def session_pids(sid: int) -> list[int]:
    """Live processes whose session id is ``sid`` (the whole spark-submit tree: JVM, Python driver, workers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 3 and fields[0] != "Z" and int(fields[3]) == sid:
            found.append(int(entry.name))
    return sorted(found)


def kill_session(sid: int, wait: float = 3.0) -> None:
    """SIGKILL every live process of session ``sid`` and wait up to ``wait`` seconds for them to be gone."""
    deadline = time.monotonic() + wait
    while pids := session_pids(sid):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        if time.monotonic() > deadline:
            return
        time.sleep(0.05)
