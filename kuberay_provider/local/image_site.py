"""``sitecustomize`` of the local stack's Ray processes: what a container image provides, enforced at import time.

:mod:`kuberay_provider.local.images` copies this file as ``sitecustomize.py`` into a generated directory that is
first on ``PYTHONPATH`` of every ``ray start`` (head and workers), so every Python process of the local Ray cluster
(raylet helpers, workers, the job supervisor, the job driver and anything it spawns) runs it at start-up. Standard
library only; nothing here runs unless ``KUBERAY_LOCAL_IMAGE`` is set (a modelled ``rayproject/ray*`` image).

A module may be imported when the file it would be loaded from is

- part of the standard library (or built in / frozen / a namespace package, whose children are judged one by one);
- under one of the allowed roots: this directory, the cluster's temp dir (where Ray stages ``working_dir`` and
  ``py_modules``), ``local://`` directories the job's runtime_env names (``KUBERAY_LOCAL_IMAGE_DIRS``);
- in site-packages and owned by an allowed distribution: the image's (``policy.json``) or one the job's runtime_env
  ``pip`` installs (``KUBERAY_LOCAL_IMAGE_EXTRA``, a comma-separated list of normalised names).

Anything else (site-packages files of other distributions, ``PYTHONPATH`` entries and editable installs of the host)
raises :class:`ModuleNotFoundError` naming the image. ``importlib.metadata`` hides the same distributions.
"""

from __future__ import annotations

import json
import os
import sys

_IMAGE = os.environ.get("KUBERAY_LOCAL_IMAGE", "")


class ImageFinder:
    """A meta-path finder that lets other finders find a module, then refuses it if the image lacks it."""

    def __init__(self, image: str, policy: dict, allowed: set[str], roots: list[str]) -> None:
        self.image = image
        self.allowed = allowed
        self.keys: dict[str, list[str]] = policy["keys"]
        self.shared: set[str] = set(policy.get("shared", ()))
        self.sites = _forms(policy["site_dirs"])
        self.roots = _forms(list(policy["stdlib_dirs"]) + roots)

    def find_spec(self, fullname, path=None, target=None):
        spec = None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        if spec is None:
            return None
        origin = spec.origin if spec.has_location else None
        if origin is None:  # built-in, frozen, namespace package or a virtual module (six.moves): judged by parts
            return spec
        if type(path) is list and len(path) == 1 and origin.startswith(path[0] + os.sep):
            return spec  # inside its (already judged) regular parent package; a namespace's parts are judged
        reason = self.refusal(os.path.abspath(origin))
        if reason is None:
            return spec
        raise ModuleNotFoundError(
            f"No module named {fullname!r} in image {self.image!r} ({reason}); kuberay-local runs Ray processes "
            "with what that image provides: ship the code with runtime_env py_modules/working_dir, name the "
            "distribution in runtime_env pip, or use an image that installs it",
            name=fullname,
        )

    def refusal(self, origin: str) -> str | None:
        """``None`` if ``origin`` may be loaded, otherwise why not."""
        for site in self.sites:
            if origin.startswith(site):
                return self._judge_site(origin[len(site):])
        if any(origin.startswith(root) for root in self.roots):
            return None
        real = os.path.realpath(origin)
        if real != origin:
            return self.refusal(real)
        return f"{origin} is not part of the image"

    def _judge_site(self, rel: str) -> str | None:
        parts = rel.split(os.sep)
        owners: list[str] = []
        for end in range(1, len(parts) + 1):
            key = "/".join(parts[:end])
            if key in self.shared:
                continue
            if key in self.keys:
                owners = self.keys[key]
                break
        if any(owner in self.allowed for owner in owners):
            return None
        if not owners:
            return f"site-packages/{'/'.join(parts)} belongs to no installed distribution"
        return f"distribution {', '.join(sorted(owners))} is not installed in it"


def _forms(dirs: list[str]) -> list[str]:
    """Each directory as given and resolved, with a trailing separator."""
    forms: list[str] = []
    for directory in dirs:
        for form in (os.path.abspath(directory), os.path.realpath(directory)):
            if form + os.sep not in forms:
                forms.append(form + os.sep)
    return forms


def _normal(name: str) -> str:
    out = []
    for char in name.lower():
        out.append("_" if char in "-." else char)
    return "".join(out)


def _hide_distributions(finder: ImageFinder) -> None:
    """``importlib.metadata`` lists only distributions the image (plus runtime_env pip) has."""
    from importlib.machinery import PathFinder

    original = PathFinder.find_distributions

    def find_distributions(*args, **kwargs):
        for dist in original(*args, **kwargs):
            location = str(getattr(dist, "_path", ""))
            name = getattr(dist, "_normalized_name", None) or dist.metadata["Name"] or ""
            if finder.refusal(os.path.abspath(location)) is None or _normal(name) in finder.allowed:
                yield dist

    PathFinder.find_distributions = staticmethod(find_distributions)  # type: ignore[method-assign]


def install() -> ImageFinder | None:
    """Install the finder for ``KUBERAY_LOCAL_IMAGE`` (no-op when unset or already installed)."""
    if not _IMAGE or any(isinstance(f, ImageFinder) for f in sys.meta_path):
        return None
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "policy.json"), encoding="utf-8") as fh:
        policy = json.load(fh)
    extra = {_normal(n) for n in os.environ.get("KUBERAY_LOCAL_IMAGE_EXTRA", "").split(",") if n.strip()}
    roots = [here, *[d for d in os.environ.get("KUBERAY_LOCAL_IMAGE_ROOTS", "").split(os.pathsep) if d],
             *[d for d in os.environ.get("KUBERAY_LOCAL_IMAGE_DIRS", "").split(os.pathsep) if d]]
    finder = ImageFinder(_IMAGE, policy, set(policy["image"]) | extra, roots)
    sys.meta_path.insert(0, finder)
    _hide_distributions(finder)
    return finder


install()
