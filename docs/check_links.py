"""Check the internal links of a built HTML documentation tree (no network).

Every ``href``/``src`` without a scheme must name an existing file of the tree and, when it has a ``#fragment``,
an ``id`` (or ``name``) in that file. External links (``http(s)://``, ``mailto:``) are counted, never fetched.

    python docs/check_links.py build/docs/html      # exit 1 listing every broken link
"""

from __future__ import annotations

import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit


class _Page(HTMLParser):
    """The anchors a page defines and the links it makes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if name in ("id", "name"):
                self.ids.add(value)
            elif (name == "href" and tag in ("a", "link")) or (name == "src" and tag in ("img", "script")):
                self.links.append(value)


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def broken_links(root: Path) -> tuple[list[str], int, int]:
    """``(broken, internal checked, external skipped)`` for every HTML page under ``root``."""
    pages = {p.resolve(): _parse(p) for p in sorted(root.rglob("*.html"))}
    broken: list[str] = []
    internal = external = 0
    for path, page in pages.items():
        for link in page.links:
            parts = urlsplit(link)
            if parts.scheme or link.startswith("//"):
                external += 1
                continue
            internal += 1
            target = (path.parent / unquote(parts.path)).resolve() if parts.path else path
            if not target.is_file():
                broken.append(f"{path.relative_to(root.resolve())}: {link} (no file {target.name})")
                continue
            if parts.fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else _parse(target).ids
                if unquote(parts.fragment) not in ids:
                    broken.append(f"{path.relative_to(root.resolve())}: {link} (no anchor #{parts.fragment})")
    return broken, internal, external


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not Path(argv[0]).is_dir():
        print("usage: python docs/check_links.py BUILT_HTML_DIR", file=sys.stderr)
        return 2
    broken, internal, external = broken_links(Path(argv[0]))
    for line in broken:
        print(f"broken link: {line}", file=sys.stderr)
    print(f"== links: {internal} internal checked, {len(broken)} broken; {external} external not fetched")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
