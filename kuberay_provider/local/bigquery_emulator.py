"""Run the bqemulator BigQuery emulator (REST + Storage gRPC) as a private, offline subprocess.

Everything the emulator writes stays under ``base_dir``: its DuckDB data dir, the upload staging dir,
TMPDIR, and a private HOME whose ``~/.duckdb/extensions`` holds the spatial extension copied from the
``duckdb-extension-spatial`` wheel (bqemulator runs ``INSTALL spatial`` at start-up, which would otherwise
download it and fail offline).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

from kuberay_provider.bigquery.config import (
    ENV_GRPC_ENDPOINT,
    ENV_PROJECT,
    ENV_REST_ENDPOINT,
    BigQueryConfig,
)
from kuberay_provider.local.net import HOST, free_port, http_ok


def install_spatial_extension(home: Path) -> None:
    """Install DuckDB's spatial extension from the PyPI wheel into ``home/.duckdb/extensions`` (no network)."""
    code = (
        "import duckdb, duckdb_extensions;"
        "con = duckdb.connect(':memory:');"
        "duckdb_extensions.import_extension('spatial', con=con);"
        "con.execute('LOAD spatial')"
    )
    env = {**os.environ, "HOME": str(home)}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(
            "Could not install DuckDB's spatial extension from the duckdb-extension-spatial package "
            f"(is it installed?): {result.stderr.strip()[-2000:]}"
        )


class BigQueryEmulator:
    """A bqemulator 1.4.0 subprocess bound to 127.0.0.1 with private state under ``base_dir``.

    Usage::

        with BigQueryEmulator(tmp_path) as emu:
            client = bigquery_client(emu.config)

    ``start_seconds`` is the measured time from spawn until both REST and gRPC answered.
    """

    def __init__(
        self,
        base_dir: str | os.PathLike[str],
        project: str = "local-project",
        rest_port: int | None = None,
        grpc_port: int | None = None,
        *,
        start_timeout: float = 60.0,
    ) -> None:
        self.base_dir = Path(base_dir).resolve()
        self.project = project
        self.rest_port = rest_port
        self.grpc_port = grpc_port
        self.start_timeout = start_timeout
        self.start_seconds: float | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    # ------------------------------------------------------------------ properties
    @property
    def rest_endpoint(self) -> str:
        """``http://127.0.0.1:<rest_port>``."""
        return f"http://{HOST}:{self.rest_port}"

    @property
    def grpc_endpoint(self) -> str:
        """``127.0.0.1:<grpc_port>``."""
        return f"{HOST}:{self.grpc_port}"

    @property
    def config(self) -> BigQueryConfig:
        """A :class:`BigQueryConfig` pointing at this emulator."""
        return BigQueryConfig(project=self.project, rest_endpoint=self.rest_endpoint, grpc_endpoint=self.grpc_endpoint)

    @property
    def env(self) -> dict[str, str]:
        """``KUBERAY_BQ_*`` variables that make :meth:`BigQueryConfig.from_env` point at this emulator."""
        return {ENV_PROJECT: self.project, ENV_REST_ENDPOINT: self.rest_endpoint, ENV_GRPC_ENDPOINT: self.grpc_endpoint}

    @property
    def pid(self) -> int | None:
        """PID of the emulator process while it runs."""
        return self._process.pid if self._process is not None else None

    @property
    def log_path(self) -> Path:
        """The emulator's combined stdout/stderr."""
        return self.base_dir / "emulator.log"

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> BigQueryEmulator:
        """Spawn the emulator and wait until REST and gRPC answer. Idempotent while running."""
        if self._process is not None and self._process.poll() is None:
            return self
        began = time.monotonic()
        home, data, uploads, tmp = (self.base_dir / name for name in ("home", "data", "uploads", "tmp"))
        for path in (home, data, uploads, tmp):
            path.mkdir(parents=True, exist_ok=True)
        if not any((home / ".duckdb" / "extensions").rglob("spatial.duckdb_extension")):
            install_spatial_extension(home)
        self.rest_port = self.rest_port or free_port()
        self.grpc_port = self.grpc_port or free_port()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("BQEMU_")},
            "HOME": str(home),
            "TMPDIR": str(tmp),
            "BQEMU_UPLOAD_STAGING_DIR": str(uploads),
            "BQEMU_ENABLE_FORMAT_EXTENSIONS": "false",  # avro would try to download
            "BQEMU_METRICS_ENABLED": "false",
            "BQEMU_LOG_LEVEL": "warning",
        }
        cmd = [
            sys.executable, "-m", "bqemulator", "start",
            "--rest-host", HOST, "--rest-port", str(self.rest_port),
            "--grpc-host", HOST, "--grpc-port", str(self.grpc_port),
            "--data-dir", str(data), "--project", self.project,
        ]  # fmt: skip
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._process = subprocess.Popen(
            cmd, env=env, cwd=str(self.base_dir), stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            self._wait_ready(began)
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - began
        return self

    def _wait_ready(self, began: float) -> None:
        deadline = began + self.start_timeout
        rest_ok = grpc_ok = False
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(f"bqemulator exited with code {self._process.returncode} at start-up: {self._log_tail()}")
            rest_ok = rest_ok or http_ok(f"{self.rest_endpoint}/healthz", timeout=1.0)
            grpc_ok = grpc_ok or _grpc_ready(self.grpc_endpoint)
            if rest_ok and grpc_ok:
                return
            time.sleep(0.1)
        raise TimeoutError(
            f"bqemulator did not answer within {self.start_timeout}s (rest ok={rest_ok}, grpc ok={grpc_ok}): {self._log_tail()}"
        )

    def _log_tail(self, limit: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-limit:]
        except OSError:
            return "<no log>"

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the emulator's process group (SIGTERM, then SIGKILL) and reap it."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
                try:
                    os.killpg(process.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    process.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):  # children of the group, if any survived
                os.killpg(process.pid, signal.SIGKILL)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> BigQueryEmulator:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def _grpc_ready(endpoint: str) -> bool:
    import grpc

    channel = grpc.insecure_channel(endpoint)
    try:
        grpc.channel_ready_future(channel).result(timeout=1)
        return True
    except grpc.FutureTimeoutError:
        return False
    finally:
        channel.close()
