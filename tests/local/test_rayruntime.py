"""Light local Ray nodes: every setting is one Ray 2.60 reads, and the bytecode cache lives where it should.

(Real clusters started with these settings are exercised by every slow test that runs a RayJob.)"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import pytest

from kuberay_provider.local import rayruntime


def _ray_dir() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("ray")
    assert spec is not None and spec.origin
    return Path(spec.origin).parent


def _binary_has(path: Path, needle: bytes) -> bool:
    data = path.read_bytes()
    return needle + b"\0" in data


@pytest.mark.parametrize("name", sorted(rayruntime.LIGHT_NODE_ENV))
def test_every_light_setting_is_read_by_ray(name: str) -> None:
    ray_dir = _ray_dir()
    if name.startswith("RAY_"):
        # C++ settings (ray_config_def.h) are read as RAY_<name> by the raylet, the GCS and core workers alike.
        for binary in ("core/src/ray/raylet/raylet", "core/src/ray/gcs/gcs_server", "_raylet.so"):
            assert _binary_has(ray_dir / binary, name.encode()), f"{binary} does not read {name}"
    else:
        sources = [p for p in (ray_dir / "dashboard").rglob("*.py") if f'"{name}"' in p.read_text(errors="replace")]
        assert sources, f"no Ray dashboard module reads {name}"


def test_light_head_flags_are_ray_start_options() -> None:
    from ray.scripts.scripts import start

    options = {opt for param in start.params for opt in param.opts}
    assert set(rayruntime.LIGHT_HEAD_FLAGS) <= options


def test_bytecode_cache_is_per_user_and_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    cache = rayruntime.bytecode_cache_dir(tmp_path / "fallback")
    assert cache.parent == tmp_path / "cache" / "kuberay-local" and cache.is_dir()
    assert cache.stat().st_mode & 0o077 == 0  # nobody else can plant bytecode in it
    assert rayruntime.bytecode_cache_dir(tmp_path / "fallback") == cache
    assert not (tmp_path / "fallback").exists()


def test_bytecode_cache_falls_back_when_home_is_unusable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "not-a-dir").write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "not-a-dir"))
    cache = rayruntime.bytecode_cache_dir(tmp_path / "fallback")
    assert cache.parent == tmp_path / "fallback" and cache.is_dir()


def test_bytecode_of_old_temp_dirs_is_pruned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    cache = rayruntime.bytecode_cache_dir(tmp_path / "fallback")
    temp_mirror = cache / Path(tempfile.gettempdir()).relative_to("/")
    old = time.time() - 2 * 3600
    entries = {
        "old": temp_mirror / "krl-old" / "__pycache__" / "job.cpython-311.pyc",
        "fresh": temp_mirror / "krl-new" / "__pycache__" / "job.cpython-311.pyc",
        "old-in-live-parent": temp_mirror / "pytest-of-me" / "pytest-1" / "__pycache__" / "t.cpython-311.pyc",
        "fresh-in-live-parent": temp_mirror / "pytest-of-me" / "pytest-2" / "__pycache__" / "t.cpython-311.pyc",
        "venv": cache / "work" / "venv" / "ray" / "__pycache__" / "__init__.cpython-311.pyc",
    }
    for path in entries.values():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"pyc")
    for key in ("old", "old-in-live-parent", "venv"):
        for path in (entries[key], *entries[key].parents):
            if path in (temp_mirror / "pytest-of-me", temp_mirror, cache) or cache not in path.parents:
                break
            os.utime(path, (old, old))
    rayruntime.bytecode_cache_dir(tmp_path / "fallback")
    assert {key for key, path in entries.items() if path.exists()} == {"fresh", "fresh-in-live-parent", "venv"}


def test_a_nodes_ports_are_distinct_and_a_restart_gets_new_ones() -> None:
    for _ in range(50):
        ports = [flag.split("=")[1] for flag in rayruntime._node_ports()]
        assert len(set(ports)) == len(rayruntime.NODE_PORT_FLAGS)
    argv = ["ray", "start", "--address=127.0.0.1:1", "--num-cpus=1", *rayruntime._node_ports()]
    fresh = rayruntime._with_fresh_node_ports(argv)
    assert fresh[:4] == argv[:4] and len(fresh) == len(argv)
    assert sorted(f.split("=")[0] for f in fresh[4:]) == sorted(rayruntime.NODE_PORT_FLAGS)
    assert set(fresh[4:]) != set(argv[4:])
