"""Kubernetes label/field selectors and PATCH application (merge, JSON patch)."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

Predicate = Callable[[dict[str, Any]], bool]

_TERM_SPLIT = re.compile(r",(?![^()]*\))")
_SET_TERM = re.compile(r"^\s*([^\s!=]+)\s+(in|notin)\s+\((.*)\)\s*$")


class SelectorError(ValueError):
    """The selector string cannot be parsed (the API server answers 400)."""


def _label_term(term: str) -> Predicate:
    term = term.strip()
    match = _SET_TERM.match(term)
    if match:
        key, op, values = match.group(1), match.group(2), {v.strip() for v in match.group(3).split(",")}
        if op == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    for op in ("!=", "==", "="):
        if op in term:
            key, value = (part.strip() for part in term.split(op, 1))
            if not key:
                raise SelectorError(f"invalid selector term {term!r}")
            if op == "!=":
                return lambda labels: labels.get(key) != value
            return lambda labels: labels.get(key) == value
    if term.startswith("!"):
        key = term[1:].strip()
        return lambda labels: key not in labels
    if not term or " " in term:
        raise SelectorError(f"invalid selector term {term!r}")
    return lambda labels: term in labels


def label_selector(text: str | None) -> Predicate:
    """Compile a label selector (``=``, ``==``, ``!=``, ``in``, ``notin``, ``key``, ``!key``) to a predicate on objects."""
    if not text or not text.strip():
        return lambda obj: True
    terms = [_label_term(t) for t in _TERM_SPLIT.split(text)]
    return lambda obj: all(t((obj.get("metadata") or {}).get("labels") or {}) for t in terms)


def required_labels(text: str | None) -> dict[str, str]:
    """The ``key=value`` (``==``, ``in (one)``) terms of a label selector: labels every match must carry.

    What a store can answer from a label index before checking the whole selector; other terms add nothing.
    """
    required: dict[str, str] = {}
    if not text or not text.strip():
        return required
    for term in _TERM_SPLIT.split(text):
        term = term.strip()
        match = _SET_TERM.match(term)
        if match:
            values = {v.strip() for v in match.group(3).split(",")}
            if match.group(2) == "in" and len(values) == 1:
                required[match.group(1)] = values.pop()
            continue
        if "!=" in term:
            continue
        for op in ("==", "="):
            if op in term:
                key, value = (part.strip() for part in term.split(op, 1))
                required[key] = value
                break
    return required


def _field_value(obj: dict[str, Any], path: str) -> str:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return "" if value is None else str(value)


def field_selector(text: str | None) -> Predicate:
    """Compile a field selector (``path=value``, ``path==value``, ``path!=value``, comma-joined) to a predicate.

    Any dotted path works, e.g. ``metadata.name``, ``involvedObject.kind``, ``regarding.name``, ``status.phase``.
    """
    if not text or not text.strip():
        return lambda obj: True
    checks: list[tuple[str, str, bool]] = []
    for term in text.split(","):
        for op in ("!=", "==", "="):
            if op in term:
                path, value = (part.strip() for part in term.split(op, 1))
                checks.append((path, value, op == "!="))
                break
        else:
            raise SelectorError(f"invalid field selector term {term!r}")
    return lambda obj: all((_field_value(obj, p) == v) != negate for p, v, negate in checks)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (also used for strategic merge patch: lists are replaced)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    return [p.replace("~1", "/").replace("~0", "~") for p in path.lstrip("/").split("/")]


def _container(doc: Any, parts: list[str]) -> Any:
    for part in parts:
        doc = doc[int(part)] if isinstance(doc, list) else doc[part]
    return doc


def json_patch(doc: Any, operations: list[dict[str, Any]]) -> Any:
    """RFC 6902 JSON patch (add, remove, replace, move, copy, test). Raises ``ValueError`` on failure."""
    doc = copy.deepcopy(doc)
    try:
        for op in operations:
            kind, parts = op["op"], _pointer(op["path"])
            if kind in ("move", "copy"):
                source = _pointer(op["from"])
                value = copy.deepcopy(_container(doc, source))
                if kind == "move":
                    doc = json_patch(doc, [{"op": "remove", "path": op["from"]}])
                doc = json_patch(doc, [{"op": "add", "path": op["path"], "value": value}])
                continue
            if not parts:
                if kind in ("add", "replace"):
                    doc = copy.deepcopy(op["value"])
                    continue
                raise ValueError(f"cannot {kind} the whole document")
            parent, last = _container(doc, parts[:-1]), parts[-1]
            if kind == "test":
                current = parent[int(last)] if isinstance(parent, list) else parent[last]
                if current != op["value"]:
                    raise ValueError(f"test failed at {op['path']}")
            elif kind == "remove":
                del parent[int(last) if isinstance(parent, list) else last]
            elif kind == "add":
                if isinstance(parent, list):
                    parent.insert(len(parent) if last == "-" else int(last), copy.deepcopy(op["value"]))
                else:
                    parent[last] = copy.deepcopy(op["value"])
            elif kind == "replace":
                if isinstance(parent, list):
                    parent[int(last)] = copy.deepcopy(op["value"])
                else:
                    if last not in parent:
                        raise ValueError(f"replace of missing path {op['path']}")
                    parent[last] = copy.deepcopy(op["value"])
            else:
                raise ValueError(f"unknown op {kind!r}")
    except (KeyError, IndexError, TypeError) as exc:
        raise ValueError(f"invalid JSON patch: {exc!r}") from exc
    return doc
