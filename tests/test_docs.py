"""The documentation's own checks: the internal-link checker ``scripts/docs.sh`` runs, and the RBAC example.

The Sphinx build itself (warnings as errors, nitpicky) runs once per CI run in the latest lane (``scripts/docs.sh``
from ``scripts/test.sh``), not here.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _check_links():
    spec = importlib.util.spec_from_file_location("docs_check_links", DOCS / "check_links.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


def test_link_checker_passes_a_tree_whose_links_resolve(tmp_path: Path) -> None:
    root = _write(tmp_path, {
        "index.html": '<a href="sub/page.html#part">p</a> <a href="#top">t</a> <a id="top"></a>'
                      '<a href="https://example.invalid/x">ext</a> <img src="_static/logo.png">',
        "sub/page.html": '<h2 id="part">Part</h2><a href="../index.html">up</a>',
        "_static/logo.png": "",
    })
    broken, internal, external = _check_links().broken_links(root)
    assert broken == []
    assert (internal, external) == (4, 1)


def test_link_checker_reports_a_missing_page_and_a_missing_anchor(tmp_path: Path) -> None:
    root = _write(tmp_path, {
        "index.html": '<a href="gone.html">g</a> <a href="page.html#nowhere">n</a> <a href="#self">s</a>',
        "page.html": '<p id="here">x</p>',
    })
    broken, _, _ = _check_links().broken_links(root)
    assert broken == [
        "index.html: gone.html (no file gone.html)",
        "index.html: page.html#nowhere (no anchor #nowhere)",
        "index.html: #self (no anchor #self)",
    ]
    assert _check_links().main([str(root)]) == 1


def test_the_google_service_account_rolebinding_binds_a_role_of_deploy_rbac() -> None:
    roles = {(d["metadata"]["namespace"], d["metadata"]["name"])
             for d in yaml.safe_load_all((ROOT / "deploy" / "rbac.yaml").read_text()) if d and d["kind"] == "Role"}
    binding = yaml.safe_load((DOCS / "examples" / "rolebinding-google-sa.yaml").read_text())
    assert binding["kind"] == "RoleBinding"
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "airflow-kuberay"}
    assert (binding["metadata"]["namespace"], binding["roleRef"]["name"]) in roles
    [subject] = binding["subjects"]
    assert subject["kind"] == "User" and subject["apiGroup"] == "rbac.authorization.k8s.io"
    assert re.fullmatch(r"[a-z][a-z0-9-]{4,28}[a-z0-9]@[a-z][a-z0-9-]+\.iam\.gserviceaccount\.com", subject["name"])


@pytest.mark.parametrize("page", sorted(p.name for p in DOCS.glob("*.md")))
def test_pages_name_only_files_that_exist(page: str) -> None:
    """Repository paths a page cites in backquotes (``deploy/rbac.yaml``, ``dags/ray_retraining.py``) exist."""
    text = (DOCS / page).read_text(encoding="utf-8")
    cited = set(re.findall(r"`((?:deploy|dags|scripts|kuberay_provider|tests|docs)/[\w./-]+?)`", text))
    missing = sorted(p for p in cited if not (ROOT / p).exists())
    assert not missing, f"{page} names paths that do not exist: {missing}"
