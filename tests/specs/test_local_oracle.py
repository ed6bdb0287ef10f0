"""The local double is an independent oracle of KubeRay: nothing in ``kuberay_provider.local`` imports the product.

Checked on the source (AST), so a lazy import inside a function counts too. The BigQuery emulator launcher is
not part of the KubeRay double (it configures the product's BigQuery clients) and is the one exception.
"""

from __future__ import annotations

import ast
from pathlib import Path

import kuberay_provider.local as local

LOCAL_DIR = Path(local.__file__).parent
NOT_THE_KUBERAY_DOUBLE = {"bigquery_emulator.py"}


def product_imports(path: Path) -> list[str]:
    """Every ``kuberay_provider.*`` module outside ``kuberay_provider.local`` that ``path`` imports."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + ([f"{node.module}.{a.name}" for a in node.names] if node.module == "kuberay_provider"
                                     else [])
        elif isinstance(node, ast.ImportFrom) and node.level > 1:
            names = [f"<relative import beyond local: {'.' * node.level}{node.module or ''}>"]
        found += [n for n in names if (n == "kuberay_provider" or n.startswith("kuberay_provider."))
                  and not (n == "kuberay_provider.local" or n.startswith("kuberay_provider.local."))
                  and not (n == "kuberay_provider" and isinstance(node, ast.ImportFrom))]
        found += [n for n in names if n.startswith("<relative")]
    return found


def test_the_local_double_imports_nothing_from_the_product():
    offenders = {p.name: product_imports(p) for p in sorted(LOCAL_DIR.glob("*.py")) if p.name not in NOT_THE_KUBERAY_DOUBLE}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_check_can_fail(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from kuberay_provider.specs import validate_rayjob\n"
                   "import kuberay_provider.constants\nfrom kuberay_provider import naming\n"
                   "from kuberay_provider.local import names\n")
    assert sorted(product_imports(bad)) == ["kuberay_provider.constants", "kuberay_provider.naming", "kuberay_provider.specs"]


def test_the_local_double_vendors_its_own_crds():
    assert sorted(p.name for p in (LOCAL_DIR / "crds").glob("*.gz")) == ["ray.io_rayclusters.yaml.gz",
                                                                         "ray.io_rayjobs.yaml.gz"]
