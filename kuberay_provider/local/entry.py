"""The ``kuberay-local`` console script: checks that the ``local`` extra is installed before loading the stack.

Installing ``airflow-provider-kuberay`` alone brings no Ray, Spark or BigQuery emulator; ``kuberay-local`` then fails
with one line naming the extra to install instead of a traceback from deep inside the stack.
"""

from __future__ import annotations

import importlib.util
import sys

#: modules of the ``local`` extra that the stack cannot start without (import name -> distribution)
REQUIRED_MODULES: dict[str, str] = {
    "aiohttp": "aiohttp",
    "psutil": "psutil",
    "jsonschema": "jsonschema",
    "ray": "ray",
    "pyspark": "pyspark",
    "bqemulator": "bqemulator",
}
INSTALL_HINT = "pip install 'airflow-provider-kuberay[local]'"


def missing_modules(modules: dict[str, str] = REQUIRED_MODULES) -> list[str]:
    """Distributions of ``modules`` that cannot be imported here."""
    missing = []
    for module, distribution in modules.items():
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(distribution)
    return missing


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``kuberay-local``: one clear line and exit status 2 without the ``local`` extra."""
    missing = missing_modules()
    if missing:
        print(f"kuberay-local needs the 'local' extra ({', '.join(missing)} not installed): {INSTALL_HINT}",
              file=sys.stderr)
        return 2
    from kuberay_provider.local.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
