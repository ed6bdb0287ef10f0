"""What a RayCluster's container image provides, modelled for the local stack's Ray processes.

A RayJob on GKE runs in the image its pods name, plus what its runtime_env ships (``working_dir``, ``py_modules``)
or installs (``pip``, ``uv``, ``conda``). The local stack runs every cluster from one host venv, which has
everything installed (Airflow, this provider, ...). To fail the way a real cluster fails, kuberay-local models:

- **``rayproject/ray*`` images** (the stock Ray images): a Ray process may import the standard library, Ray and the
  distributions ``ray[default,data,train]`` pulls in (the requirement closure of the installed ``ray`` computed from
  ``importlib.metadata``, plus the image's ``pip``/``setuptools``/``wheel``), what runtime_env ``pip``/``uv``/
  ``conda`` names (and their closure) *if installed in the host venv*, and what runtime_env ``working_dir``/
  ``py_modules`` ship. Anything else raises :class:`ModuleNotFoundError` naming the image (see
  :mod:`kuberay_provider.local.image_site`, installed as ``sitecustomize`` first on every ``ray start``'s
  ``PYTHONPATH``, with the host's ``PYTHONPATH`` dropped and the node's working directory an empty one).
- **any other image** (a custom one): provides everything installed in the host venv (logged once per image).

The double never downloads: runtime_env ``pip``/``uv``/``conda`` are checked against the host venv and then removed
from the runtime_env handed to the real local Ray (which would otherwise build a virtualenv and download). A
requirement that is not installed (or not in the requested version) fails the job the way a pip install failure
does on a cluster: Ray's runtime_env setup fails (a runtime_env plugin registered by this module raises the message)
and the Ray job ends FAILED with ``runtime_env setup failed: ...``.

Imports nothing from the product outside :mod:`kuberay_provider.local`.
"""

from __future__ import annotations

import functools
import importlib.metadata as md
import json
import logging
import os
import re
import shutil
import sysconfig
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.markers import UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement, Requirement

log = logging.getLogger(__name__)

RAY_EXTRAS: tuple[str, ...] = ("default", "data", "train")
"""The extras of ``ray`` a stock ``rayproject/ray`` image is modelled with."""
IMAGE_BASE: tuple[str, ...] = ("pip", "setuptools", "wheel")
"""Distributions of the image's Python installation itself."""
INSTALL_FIELDS: tuple[str, ...] = ("pip", "uv", "conda")
PLUGIN_FIELD = "kuberay_local_install_check"
PLUGIN_MODULE = "kuberay_local_install_check"
EXTRA_ENV = "KUBERAY_LOCAL_IMAGE_EXTRA"
DIRS_ENV = "KUBERAY_LOCAL_IMAGE_DIRS"
_SITE_TEMPLATE = Path(__file__).with_name("image_site.py")
_PLUGIN_SOURCE = '''"""kuberay-local: fails Ray's runtime_env setup with the message the double computed (see local/images.py)."""

from ray._private.runtime_env.plugin import RuntimeEnvPlugin


class InstallCheck(RuntimeEnvPlugin):
    name = "kuberay_local_install_check"

    async def create(self, uri, runtime_env, context, logger):  # noqa: ANN001, ANN201
        raise RuntimeError(runtime_env[self.name]["error"])
'''
_logged_custom: set[str] = set()


def normalize(name: str) -> str:
    """A distribution name in the form ``importlib.metadata`` directories use (PEP 503, ``_`` separators)."""
    return re.sub(r"[-_.]+", "_", name).lower()


def models_image(image: str | None) -> bool:
    """Whether ``image`` is a stock Ray image (``[registry/]rayproject/ray[-x][:tag]``) the double models."""
    if not image:
        return False
    repo = image.split("@")[0]
    last = repo.rsplit("/", 1)[-1]
    repo = repo[: len(repo) - len(last)] + last.split(":")[0]
    parts = repo.split("/")
    return len(parts) >= 2 and parts[-2] == "rayproject" and (parts[-1] == "ray" or parts[-1].startswith("ray-"))


def _installed(name: str) -> md.Distribution | None:
    try:
        return md.distribution(name)
    except md.PackageNotFoundError:
        return None


def _marker_ok(req: Requirement, extra: str) -> bool:
    if req.marker is None:
        return True
    try:
        return req.marker.evaluate({"extra": extra})
    except UndefinedEnvironmentName:
        return False


def requirement_closure(requirements: Iterable[Requirement]) -> set[str]:
    """Normalised names of the installed distributions ``requirements`` pull in (with their extras), transitively.

    Requirements whose markers do not hold here, and distributions not installed, are skipped.
    """
    seen: set[tuple[str, str]] = set()
    names: set[str] = set()
    todo = [req for req in requirements if _marker_ok(req, "")]
    while todo:
        req = todo.pop()
        dist = _installed(req.name)
        if dist is None:
            continue
        names.add(normalize(req.name))
        for wanted in ("", *sorted(req.extras)):
            if (normalize(req.name), wanted) in seen:
                continue
            seen.add((normalize(req.name), wanted))
            for line in dist.requires or ():
                child = Requirement(line)
                if (child.marker is None and wanted == "") or (child.marker is not None and _marker_ok(child, wanted)):
                    todo.append(child)
    return names


@functools.lru_cache(maxsize=1)
def image_distributions() -> frozenset[str]:
    """What a ``rayproject/ray*`` image provides: ``ray[default,data,train]``'s closure plus :data:`IMAGE_BASE`."""
    roots = [Requirement(f"ray[{','.join(RAY_EXTRAS)}]"), *(Requirement(n) for n in IMAGE_BASE)]
    return frozenset(requirement_closure(roots))


def site_dirs() -> list[str]:
    """The host venv's site-packages directories."""
    paths = sysconfig.get_paths()
    return sorted({os.path.abspath(paths["purelib"]), os.path.abspath(paths["platlib"])})


def import_keys() -> tuple[dict[str, list[str]], list[str]]:
    """``({site-packages key: [owning distributions]}, shared keys)``.

    A key is the site-packages-relative path (``/``-separated) of a top-level module file or of the first regular
    package (a directory with ``__init__.py``) on the way to a file; namespace directories are skipped. A package
    directory owned by several distributions (an old-style shared namespace) is *shared*: deeper keys decide.
    """
    sites = site_dirs()
    is_package: dict[str, bool] = {}
    chains: list[tuple[str, list[str]]] = []  # (owner, the package/module keys on the way to one file)
    for dist in md.distributions():
        name = normalize(dist.metadata["Name"] or "")
        for file in dist.files or ():
            path = os.path.abspath(str(dist.locate_file(file)))
            site = next((s for s in sites if path.startswith(s + os.sep)), None)
            if site is None:
                continue
            parts = path[len(site) + 1:].split(os.sep)
            if parts[0].endswith((".dist-info", ".egg-info", ".pth")) or parts[0] == "__pycache__":
                continue
            chain = []
            for end in range(1, len(parts)):
                directory = os.path.join(site, *parts[:end])
                if directory not in is_package:
                    is_package[directory] = os.path.isfile(os.path.join(directory, "__init__.py"))
                if is_package[directory]:
                    chain.append("/".join(parts[:end]))
            chain.append("/".join(parts))
            chains.append((name, chain))
    shared: set[str] = set()
    while True:  # a package owned by several distributions is shared: the next key on the way decides
        keys: dict[str, set[str]] = {}
        for name, chain in chains:
            keys.setdefault(next((k for k in chain[:-1] if k not in shared), chain[-1]), set()).add(name)
        more = {k for k, owners in keys.items() if len(owners) > 1 and not k.endswith(".py")
                and any(k in chain[:-1] for _, chain in chains)}
        if not more:
            break
        shared |= more
    return {k: sorted(v) for k, v in keys.items()}, sorted(shared)


def stdlib_dirs() -> list[str]:
    """The standard library's directories (``lib-dynload`` included)."""
    paths = sysconfig.get_paths()
    return sorted({os.path.abspath(paths["stdlib"]), os.path.abspath(paths["platstdlib"])})


def write_site_dir(directory: Path) -> Path:
    """Write ``sitecustomize.py``, the install-check plugin and ``policy.json`` into ``directory``; returns it."""
    directory.mkdir(parents=True, exist_ok=True)
    keys, shared = import_keys()
    policy = {"image": sorted(image_distributions()), "keys": keys, "shared": shared,
              "site_dirs": site_dirs(), "stdlib_dirs": stdlib_dirs()}
    (directory / "policy.json").write_text(json.dumps(policy, sort_keys=True))
    shutil.copyfile(_SITE_TEMPLATE, directory / "sitecustomize.py")
    (directory / f"{PLUGIN_MODULE}.py").write_text(_PLUGIN_SOURCE)
    return directory


def node_env(image: str | None, base_env: Mapping[str, str], site_dir: Path, roots: Iterable[Path]) -> dict[str, str]:
    """The environment of a ``ray start`` for a node running ``image``.

    Always: the generated site dir first on ``PYTHONPATH`` and the install-check plugin registered. For a modelled
    image the host's ``PYTHONPATH`` is dropped and ``KUBERAY_LOCAL_IMAGE`` / ``KUBERAY_LOCAL_IMAGE_ROOTS`` switch the
    import policy on; for a custom image the host's ``PYTHONPATH`` is kept (it provides everything installed).
    """
    env = {k: v for k, v in base_env.items() if not k.startswith("KUBERAY_LOCAL_IMAGE")}
    env["RAY_RUNTIME_ENV_PLUGINS"] = json.dumps([{"class": f"{PLUGIN_MODULE}.InstallCheck"}])
    if models_image(image):
        env["PYTHONPATH"] = str(site_dir)
        env["KUBERAY_LOCAL_IMAGE"] = str(image)
        env["KUBERAY_LOCAL_IMAGE_ROOTS"] = os.pathsep.join(str(r) for r in roots)
    else:
        if image not in _logged_custom:
            _logged_custom.add(str(image))
            log.info("image %r is not a rayproject/ray image: its Ray processes may import everything installed "
                     "in the local venv", image)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(site_dir), base_env.get("PYTHONPATH", "")) if p)
    return env


@dataclass
class PreparedRuntimeEnv:
    """A runtime_env as the double hands it to the local Ray, and what it found."""

    runtime_env: dict[str, Any] | None
    distributions: list[str] = field(default_factory=list)
    """Normalised names the runtime_env's install fields make importable (closure included)."""
    error: str | None = None
    """Why installing would fail; the job then fails in Ray's runtime_env setup with this message."""


class InstallError(ValueError):
    """A runtime_env install entry the local double cannot satisfy."""


def _lines(field_name: str, value: Any) -> list[str]:
    """Requirement lines of a ``pip``/``uv`` value: a list, ``{"packages": list | path}`` or a requirements file."""
    if isinstance(value, Mapping):
        value = value.get("packages", [])
    if isinstance(value, str):
        path = Path(value)
        if not path.is_file():
            raise InstallError(f"runtime_env {field_name}={value!r}: not a requirements file on this machine")
        lines = []
        for raw in path.read_text().splitlines():
            line = raw.split(" #")[0].strip()
            if line.startswith(("-r ", "--requirement ")):
                lines += _lines(field_name, str(path.parent / line.split(None, 1)[1]))
            elif line and not line.startswith("#"):
                lines.append(line)
        return lines
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value if str(v).strip()]
    raise InstallError(f"runtime_env {field_name}={value!r}: expected a list of requirements, "
                       "{'packages': [...]} or a requirements file")


def _conda_lines(value: Any) -> list[str]:
    if isinstance(value, str):
        path = Path(value)
        if not path.is_file():
            raise InstallError(f"runtime_env conda={value!r}: a named conda environment cannot exist on the local "
                               "stack (use a dict or an environment.yaml)")
        import yaml

        value = yaml.safe_load(path.read_text()) or {}
    if not isinstance(value, Mapping):
        raise InstallError(f"runtime_env conda={value!r}: expected an environment mapping or file")
    lines: list[str] = []
    for dep in value.get("dependencies") or []:
        if isinstance(dep, Mapping):
            lines += _lines("conda.pip", dep.get("pip") or [])
        else:
            name = re.split(r"[=<>!~ ]", str(dep).split("::")[-1], maxsplit=1)[0]
            if name not in ("python", "pip", ""):
                lines.append(name)
    return lines


def check_requirements(field_name: str, lines: Iterable[str]) -> list[Requirement]:
    """Parse ``lines`` and check each is installed in the host venv in a matching version; raises :class:`InstallError`."""
    reqs: list[Requirement] = []
    problems: list[str] = []
    for line in lines:
        if line.startswith("-"):
            if line.split("=")[0].split()[0] in ("--index-url", "-i", "--extra-index-url", "--pre", "--trusted-host",
                                                  "--find-links", "-f", "--no-index", "--prefer-binary"):
                continue
            problems.append(f"{line!r} (pip options other than index settings cannot be honoured locally)")
            continue
        try:
            req = Requirement(line)
        except InvalidRequirement:
            problems.append(f"{line!r} (not a requirement name; the local stack cannot fetch paths or URLs)")
            continue
        if req.url:
            problems.append(f"{line!r} (a URL requirement; the local stack never downloads)")
            continue
        if not _marker_ok(req, ""):
            continue
        dist = _installed(req.name)
        if dist is None:
            problems.append(f"{line!r} (not installed)")
        elif req.specifier and not req.specifier.contains(dist.version, prereleases=True):
            problems.append(f"{line!r} (installed: {dist.version})")
        else:
            reqs.append(req)
    if problems:
        raise InstallError(
            f"runtime_env {field_name}: cannot install {', '.join(problems)}. kuberay-local never downloads: a "
            "runtime_env install entry must already be installed in the venv the local stack runs from (a real "
            "cluster would pip install it when the job starts)")
    return reqs


def _local_dirs(runtime_env: Mapping[str, Any]) -> list[str]:
    """Directories named by ``local://`` ``working_dir``/``py_modules`` URIs (in place on every node)."""
    uris = [runtime_env.get("working_dir"), *list(runtime_env.get("py_modules") or [])]
    return [u[len("local://"):] for u in uris if isinstance(u, str) and u.startswith("local://")]


def prepare_runtime_env(runtime_env: Mapping[str, Any] | None, image: str | None) -> PreparedRuntimeEnv:
    """Check ``pip``/``uv``/``conda`` against the host venv and return the runtime_env for the real local Ray.

    The install fields are removed. For a modelled image, ``env_vars`` gain :data:`EXTRA_ENV` (the distributions
    they make importable) and :data:`DIRS_ENV` (``local://`` directories). An install entry that cannot be
    satisfied sets ``error`` and the plugin field that makes Ray's runtime_env setup fail with it.
    """
    if not runtime_env:
        return PreparedRuntimeEnv(dict(runtime_env) if runtime_env is not None else None)
    env = {k: v for k, v in runtime_env.items() if k not in INSTALL_FIELDS}
    try:
        reqs: list[Requirement] = []
        for name in INSTALL_FIELDS:
            value = runtime_env.get(name)
            if value is None:
                continue
            lines = _conda_lines(value) if name == "conda" else _lines(name, value)
            reqs += check_requirements(name, lines)
    except InstallError as err:
        env[PLUGIN_FIELD] = {"error": str(err)}
        return PreparedRuntimeEnv(env, error=str(err))
    names = sorted(requirement_closure(reqs))
    if models_image(image):
        env_vars = dict(env.get("env_vars") or {})
        if names:
            env_vars[EXTRA_ENV] = ",".join(names)
        if _local_dirs(env):
            env_vars[DIRS_ENV] = os.pathsep.join(_local_dirs(env))
        if env_vars:
            env["env_vars"] = env_vars
    return PreparedRuntimeEnv(env, names)
