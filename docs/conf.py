"""Sphinx configuration of the provider's documentation (built by ``scripts/docs.sh``, warnings are errors)."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # document the checkout (the same code the wheel ships)

# autodoc imports the operator modules, which import Airflow: give it a private, quiet home.
if "AIRFLOW_HOME" not in os.environ:  # scripts/docs.sh sets (and removes) one
    os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="kuberay-docs-airflow-")
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "False")

import kuberay_provider  # noqa: E402

project = "airflow-provider-kuberay"
author = "airflow-provider-kuberay contributors"
release = version = kuberay_provider.__version__

extensions = ["myst_parser", "sphinx.ext.autodoc"]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build", "examples"]
root_doc = "index"

myst_heading_anchors = 3
myst_enable_extensions = ["substitution"]
myst_substitutions = {"version": version}

# Cross-references must resolve (nitpicky), except to libraries whose documentation is not part of this build
# (no network: no intersphinx). Everything of kuberay_provider must resolve.
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(airflow|kubernetes|kubernetes_asyncio|collections|typing|datetime|pathlib|asyncio|threading|logging|"
               r"enum)(\..*)?"),
    (r"py:meth", r"(render_template|resolve_template_files)"),  # Airflow's BaseOperator methods
    (r"py:class", r"kuberay_provider\..*\.(T|_\w+)"),  # type variables and private base classes
    (r"py:class", r"'?dict\[str"),  # a string annotation autodoc splits at its comma
    (r"py:.*", r"(Any|Context|Callable|Mapping|Sequence|AsyncIterator|Iterator|TriggerEvent|PokeReturnValue)"),
]

autodoc_default_options = {"members": True, "show-inheritance": True, "member-order": "bysource"}
autodoc_typehints = "signature"
autodoc_class_signature = "mixed"
add_module_names = False

html_theme = "furo"
html_title = f"airflow-provider-kuberay {version}"
html_static_path: list[str] = []
