"""Deterministic, valid Kubernetes names and labels from an Airflow task instance's identity (pure)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from kuberay_provider import constants as c
from kuberay_provider.errors import InvalidParameterError

DNS_1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
DNS_1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
LABEL_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$")
DNS_1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
MAX_LABEL_VALUE = 63
_HASH_LEN = 10


@dataclass(frozen=True)
class TaskInstanceIdentity:
    """What identifies one task instance (all tries share it) and one try of it."""

    dag_id: str
    task_id: str
    run_id: str
    map_index: int = -1
    try_number: int = 1

    @property
    def key(self) -> str:
        """A short stable hash of (dag_id, task_id, run_id, map_index): the same for every try."""
        raw = "\x1f".join([self.dag_id, self.task_id, self.run_id, str(self.map_index)])
        return hashlib.sha256(raw.encode()).hexdigest()[:_HASH_LEN]

    def rayjob_name(self, prefix: str | None = None) -> str:
        """``<slug>-<key>-<try>``: a DNS-1035 label of at most 47 characters, stable per try."""
        suffix = f"-{self.key}-{self.try_number}"
        slug = slugify(prefix or f"{self.dag_id}-{self.task_id}")
        if self.map_index >= 0 and not prefix:
            slug = f"{slug}-m{self.map_index}"
        room = c.MAX_RAYJOB_NAME_LENGTH - len(suffix)
        slug = slug[:room].rstrip("-") or "rayjob"
        if not slug[0].isalpha():
            slug = ("r" + slug)[:room].rstrip("-")
        return f"{slug}{suffix}"

    def labels(self) -> dict[str, str]:
        """Labels that let the provider (and the janitor) find every RayJob of this task instance."""
        return {
            c.MANAGED_BY_LABEL: c.MANAGED_BY_VALUE,
            c.TASK_INSTANCE_LABEL: self.key,
            c.DAG_ID_LABEL: sanitize_label_value(self.dag_id),
            c.TASK_ID_LABEL: sanitize_label_value(self.task_id),
            c.RUN_ID_LABEL: sanitize_label_value(self.run_id),
            # "-1" (not mapped) is not a valid label value: label values must start with [A-Za-z0-9].
            c.MAP_INDEX_LABEL: str(self.map_index) if self.map_index >= 0 else "none",
            c.TRY_NUMBER_LABEL: str(self.try_number),
        }

    def annotations(self) -> dict[str, str]:
        """The full, unsanitised identity (labels may be truncated)."""
        return {
            c.DAG_ID_ANNOTATION: self.dag_id,
            c.TASK_ID_ANNOTATION: self.task_id,
            c.RUN_ID_ANNOTATION: self.run_id,
        }


def slugify(text: str) -> str:
    """Lower-case, keep ``[a-z0-9-]``, collapse runs of anything else into one ``-``."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def sanitize_label_value(value: str) -> str:
    """Turn any string into a valid label value (≤ 63 chars); long values keep a hash suffix to stay unique."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "_", value)
    cleaned = cleaned.strip("_.-")
    if len(cleaned) > MAX_LABEL_VALUE:
        digest = hashlib.sha256(value.encode()).hexdigest()[:8]
        cleaned = cleaned[: MAX_LABEL_VALUE - 9].rstrip("_.-") + "-" + digest
    return cleaned


def validate_rayjob_name(name: str, parameter: str = "name") -> str:
    """Raise unless ``name`` is what KubeRay accepts for a RayJob: DNS-1035 label, ≤ 47 characters."""
    if not isinstance(name, str) or not name:
        raise InvalidParameterError(parameter, name, "must be a non-empty string")
    if len(name) > c.MAX_RAYJOB_NAME_LENGTH:
        raise InvalidParameterError(
            parameter, name, f"must be at most {c.MAX_RAYJOB_NAME_LENGTH} characters (KubeRay's limit), got {len(name)}"
        )
    if not DNS_1035_LABEL.match(name):
        raise InvalidParameterError(
            parameter, name, "must be a DNS-1035 label: lower-case letters, digits and '-', starting with a letter"
        )
    return name


def validate_namespace(namespace: str, parameter: str = "namespace") -> str:
    """Raise unless ``namespace`` is a valid Kubernetes namespace name (DNS-1123 label, ≤ 63)."""
    if not isinstance(namespace, str) or len(namespace) > 63 or not DNS_1123_LABEL.match(namespace):
        raise InvalidParameterError(parameter, namespace, "must be a DNS-1123 label (lower-case, ≤ 63 characters)")
    return namespace


def validate_labels(labels: dict[str, str], parameter: str = "labels") -> dict[str, str]:
    """Raise unless every key is a qualified label name and every value a valid label value."""
    if not isinstance(labels, dict):
        raise InvalidParameterError(parameter, labels, "must be a mapping of label names to values")
    for key, value in labels.items():
        if not isinstance(key, str):
            raise InvalidParameterError(f"{parameter}[{key!r}]", key, "is not a valid Kubernetes label name")
        prefix, slash, name = key.rpartition("/")
        if (slash and (not prefix or len(prefix) > 253 or not DNS_1123_SUBDOMAIN.match(prefix))) or len(name) > 63 or not (
            LABEL_NAME.match(name)
        ):
            raise InvalidParameterError(f"{parameter}[{key!r}]", key, "is not a valid Kubernetes label name")
        if not isinstance(value, str) or len(value) > MAX_LABEL_VALUE or not LABEL_VALUE.match(value):
            raise InvalidParameterError(
                f"{parameter}[{key!r}]", value, "must be a label value: ≤ 63 characters of [A-Za-z0-9_.-]"
            )
    return labels


def label_selector(labels: dict[str, str]) -> str:
    """``k1=v1,k2=v2`` for a list call."""
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


#: KubeRay's ``MaxRayClusterNameLength``: 63 minus the longest Service suffix KubeRay appends (``-serve-svc``).
#: RayJob names leave room for the ``-<5 chars>`` of the cluster KubeRay creates: 53 - 6 = 47.
MAX_RAYCLUSTER_NAME_LENGTH = 53
_SELECTOR_SET = re.compile(r"^\s*(?P<key>[^\s!=()]+)\s+(?P<op>in|notin)\s+\((?P<values>[^()]*)\)\s*$")
_SELECTOR_EQ = re.compile(r"^\s*(?P<key>[^\s!=()]+)\s*(?P<op>==|!=|=)\s*(?P<value>[^\s!=(),]*)\s*$")
_SELECTOR_EXISTS = re.compile(r"^\s*(?P<neg>!?)\s*(?P<key>[^\s!=(),]+)\s*$")


def validate_raycluster_name(name: str, parameter: str = "name") -> str:
    """Raise unless ``name`` can name a RayCluster: a DNS-1035 label of at most 53 characters (KubeRay's
    ``ValidateRayClusterMetadata``; the clusters KubeRay makes for RayJobs are ``<rayjob>-<5 chars>``, up to 53)."""
    if not isinstance(name, str) or not name:
        raise InvalidParameterError(parameter, name, "must be a non-empty string")
    if len(name) > MAX_RAYCLUSTER_NAME_LENGTH or not DNS_1035_LABEL.match(name):
        raise InvalidParameterError(
            parameter, name, f"must be a DNS-1035 label of at most {MAX_RAYCLUSTER_NAME_LENGTH} characters (KubeRay's "
            "limit): lower-case letters, digits and '-', "
            "starting with a letter"
        )
    return name


def validate_dns_subdomain(value: str, parameter: str) -> str:
    """Raise unless ``value`` is a DNS-1123 subdomain (≤ 253): service accounts, Secrets and most object names."""
    if not isinstance(value, str) or len(value) > 253 or not DNS_1123_SUBDOMAIN.match(value):
        raise InvalidParameterError(
            parameter, value, "must be a DNS-1123 subdomain: lower-case letters, digits, '-' and '.' (≤ 253 characters)"
        )
    return value


def _split_selector(selector: str) -> list[str]:
    """Split on the commas that separate requirements (not those inside ``in (a, b)``)."""
    parts, depth, current = [], 0, ""
    for ch in selector:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return parts


def validate_label_selector(selector: str, parameter: str = "label_selector") -> str:
    """Raise unless ``selector`` is a Kubernetes label selector (``k=v``, ``k!=v``, ``k in (a,b)``, ``!k``, …)."""
    if not isinstance(selector, str) or not selector.strip():
        raise InvalidParameterError(parameter, selector, "must be a non-empty label selector such as 'app=ray'")
    for requirement in _split_selector(selector):
        values: list[str] = []
        match = _SELECTOR_SET.match(requirement)
        if match:
            values = [v.strip() for v in match["values"].split(",")]
            if not any(values):
                match = None
        else:
            match = _SELECTOR_EQ.match(requirement) or _SELECTOR_EXISTS.match(requirement)
            if match and "value" in match.groupdict():
                values = [match["value"]]
        try:
            if match is None:
                raise ValueError
            validate_labels({match["key"]: ""}, parameter)
            for value in values:
                validate_labels({"k": value}, parameter)
        except (ValueError, InvalidParameterError):
            raise InvalidParameterError(
                parameter, selector,
                f"requirement {requirement.strip()!r} is not 'key', '!key', 'key=value', 'key!=value' or "
                "'key in (v1,v2)' with a valid label name and values",
            ) from None
    return selector


def validate_seconds(value: object, parameter: str, *, allow_zero: bool = False) -> float:
    """Raise unless ``value`` is a positive number of seconds (≥ 0 with ``allow_zero``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or (value == 0 and not allow_zero):
        raise InvalidParameterError(parameter, value, f"must be a {'non-negative' if allow_zero else 'positive'} "
                                                      "number of seconds")
    return float(value)
