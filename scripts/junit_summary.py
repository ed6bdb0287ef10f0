"""One line per test lane from pytest's JUnit XML, and a closing total: used by scripts/test.sh.

    python scripts/junit_summary.py LANE JUNIT_XML SECONDS INSTALL_LOG   # "lane LANE: 10 passed, 0 failed, ..."
    python scripts/junit_summary.py --total JUNIT_XML...                  # "total: 30 passed, 0 failed, 2 skipped"
"""

from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def counts(path: str) -> dict[str, int]:
    """passed / failed / skipped counts of one JUnit XML file (errors count as failed)."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return {"passed": 0, "failed": 1, "skipped": 0}  # no report: the lane did not run, which is a failure
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    total = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for suite in suites:
        for key in total:
            total[key] += int(suite.get(key, 0))
    failed = total["failures"] + total["errors"]
    return {"passed": total["tests"] - failed - total["skipped"], "failed": failed, "skipped": total["skipped"]}


def line(c: dict[str, int]) -> str:
    return f"{c['passed']} passed, {c['failed']} failed, {c['skipped']} skipped"


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--total":
        total = {"passed": 0, "failed": 0, "skipped": 0}
        for path in argv[1:]:
            for key, value in counts(path).items():
                total[key] += value
        print(f"total: {line(total)}")
        return 0
    lane, path, seconds, install_log = argv
    installed = re.search(r"in ([\d.]+) s", Path(install_log).read_text()) if Path(install_log).exists() else None
    install = f", install {installed.group(1)} s" if installed else ""
    print(f"lane {lane}: {line(counts(path))} in {seconds} s{install}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
