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
