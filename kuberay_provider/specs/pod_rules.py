"""Kubernetes' own rules for the pod templates inside a RayJob/RayCluster (pure).

The API server does not apply them to a RayJob (its pod templates are only CRD schema); they apply when KubeRay
creates the Pods, so breaking one makes every Pod creation fail and the RayJob never reaches Running. Ported from
``k8s.io/kubernetes/pkg/apis/core/validation`` and ``k8s.io/apimachinery/pkg/util/validation``; each function names
its Go original.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from kuberay_provider.naming import DNS_1123_LABEL, DNS_1123_SUBDOMAIN, LABEL_NAME, LABEL_VALUE

Problems = Iterator[tuple[str, str]]
ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
CONFIG_MAP_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
TOLERATION_OPERATORS = ("Equal", "Exists")
STANDARD_CONTAINER_RESOURCES = ("cpu", "memory", "ephemeral-storage")
_QUANTITY = re.compile(r"^([+-]?(?:\d+(?:\.\d*)?|\.\d+))(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?$")
_SUFFIX = {"": 1, "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "k": 10**3, "M": 10**6,
           "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
           "Pi": 2**50, "Ei": 2**60}


def parse_quantity(value: Any) -> Decimal | None:
    """A Kubernetes ``resource.Quantity`` (``"500m"``, ``"4Gi"``, ``"1e3"``, ``2``) as a Decimal, or None."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    match = _QUANTITY.match(str(value).strip())
    if not match:
        return None
    number, suffix = match.groups()
    try:
        if suffix and suffix[0] in "eE":
            return Decimal(number) * Decimal(10) ** int(suffix[1:])
        return Decimal(number) * Decimal(_SUFFIX[suffix or ""])
    except (InvalidOperation, KeyError):  # pragma: no cover - the regex admits only valid numbers
        return None


def qualified_name_problem(key: Any) -> str | None:
    """``IsQualifiedName``: ``[prefix/]name``, prefix a DNS-1123 subdomain ≤ 253, name ≤ 63 of ``[A-Za-z0-9_.-]``."""
    if not isinstance(key, str) or not key:
        return "must be a qualified name such as 'example.com/my-key' or 'my-key'"
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not DNS_1123_SUBDOMAIN.match(prefix)):
        return "has a prefix that is not a DNS-1123 subdomain (lower-case letters, digits, '-', '.')"
    if not name or len(name) > 63 or not LABEL_NAME.match(name):
        return "must be a qualified name: ≤ 63 characters of [A-Za-z0-9_.-], starting and ending alphanumeric, " \
               "with an optional DNS-subdomain prefix and '/'"
    return None


def validate_labels(labels: Any, path: str) -> Problems:
    """``ValidateLabels`` (apimachinery ``metav1validation``): qualified names and label values."""
    for key, value in (labels or {}).items():
        problem = qualified_name_problem(key)
        if problem:
            yield f"{path}[{key!r}]", f"key {problem}"
        elif not isinstance(value, str) or len(value) > 63 or not LABEL_VALUE.match(value):
            yield f"{path}[{key!r}]", "must be a label value: ≤ 63 characters of [A-Za-z0-9_.-], alphanumeric at both ends"


def validate_annotations(annotations: Any, path: str) -> Problems:
    """``ValidateAnnotations`` (apimachinery ``apivalidation``): keys are qualified names (case-insensitive),
    all keys and values together at most 256 KiB."""
    total = 0
    for key, value in (annotations or {}).items():
        problem = qualified_name_problem(key.lower() if isinstance(key, str) else key)
        if problem:
            yield f"{path}[{key!r}]", f"annotation key {problem}"
        total += len(str(key)) + len(str(value))
    if total > TOTAL_ANNOTATION_SIZE_LIMIT:
        yield path, f"annotations total {total} bytes; Kubernetes allows at most {TOTAL_ANNOTATION_SIZE_LIMIT}"


def validate_tolerations(tolerations: Any, path: str) -> Problems:
    """``validateTolerations`` (core validation)."""
    for i, tol in enumerate(tolerations or ()):
        p = f"{path}[{i}]"
        if not isinstance(tol, Mapping):
            yield p, "must be a toleration mapping (key, operator, value, effect, tolerationSeconds)"
            continue
        key, operator, value, effect = (tol.get(k) or "" for k in ("key", "operator", "value", "effect"))
        if key:
            problem = qualified_name_problem(key)
            if problem:
                yield f"{p}.key", problem
        elif operator != "Exists":
            yield f"{p}.operator", "must be Exists when key is empty (which means: tolerate every taint)"
        if tol.get("tolerationSeconds") is not None and effect != "NoExecute":
            yield f"{p}.effect", "must be NoExecute when tolerationSeconds is set"
        if operator in ("Equal", ""):
            if not isinstance(value, str) or len(value) > 63 or not LABEL_VALUE.match(value):
                yield f"{p}.value", "must be a label value: ≤ 63 characters of [A-Za-z0-9_.-]"
        elif operator == "Exists":
            if value:
                yield f"{p}.value", "must be empty when operator is Exists"
        else:
            yield f"{p}.operator", f"must be one of {list(TOLERATION_OPERATORS)}"
        if effect and effect not in TAINT_EFFECTS:
            yield f"{p}.effect", f"must be one of {list(TAINT_EFFECTS)} (or empty: every effect)"


def _is_native(name: str) -> bool:
    """``IsNativeResource``: no domain, or a ``kubernetes.io`` one."""
    return "/" not in name or "kubernetes.io/" in name


def _is_hugepages(name: str) -> bool:
    return name.startswith("hugepages-")


def _is_extended(name: str) -> bool:
    """``IsExtendedResourceName``: a non-native, domain-qualified name (``nvidia.com/gpu``, ``google.com/tpu``)."""
    return not _is_native(name) and not name.startswith("requests.") and qualified_name_problem(name) is None


def validate_resource_requirements(resources: Any, path: str) -> Problems:
    """``ValidateResourceRequirements`` with ``validateContainerResourceName`` and ``ValidateResourceQuantityValue``:
    standard or domain-qualified names, non-negative quantities, integers for extended resources, requests ≤ limits,
    and requests equal to limits for resources that cannot be overcommitted (extended resources, hugepages)."""
    if not isinstance(resources, Mapping):
        return
    limits = resources.get("limits") or {}
    requests = resources.get("requests") or {}
    parsed: dict[str, dict[str, Decimal]] = {"limits": {}, "requests": {}}
    for kind, values in (("limits", limits), ("requests", requests)):
        for name, qty in values.items():
            p = f"{path}.{kind}[{name!r}]"
            problem = qualified_name_problem(name)
            if problem:
                yield p, f"resource name {problem}"
                continue
            if "/" not in name and name not in STANDARD_CONTAINER_RESOURCES and not _is_hugepages(name):
                yield p, (f"is not a standard container resource ({', '.join(STANDARD_CONTAINER_RESOURCES)}, "
                          "hugepages-<size>); other resources need their vendor's domain, e.g. 'nvidia.com/gpu', "
                          "'google.com/tpu' (Ray's own custom resources go in rayStartParams resources)")
                continue
            number = parse_quantity(qty)
            if number is None:
                continue  # the CRD schema's quantity pattern reports it
            if number < 0:
                yield p, "must be a non-negative quantity"
            elif _is_extended(name) and number != number.to_integral_value():
                yield p, f"{name} is an extended resource: its quantity must be a whole number"
            parsed[kind][name] = number
    for name, request in parsed["requests"].items():
        p = f"{path}.requests[{name!r}]"
        limit = parsed["limits"].get(name)
        overcommit = _is_native(name) and not _is_hugepages(name)
        if limit is not None:
            if request > limit:
                yield p, f"must be less than or equal to the {name} limit ({limits[name]})"
            elif not overcommit and request != limit:
                yield p, f"must equal the {name} limit ({limits[name]}): it cannot be overcommitted"
        elif not overcommit:
            yield p, f"needs a matching limit: {name} cannot be overcommitted"


def validate_env(env: Any, path: str) -> Problems:
    """``ValidateEnv`` with ``validateSecretKeySelector``: variable names, Secret names and keys."""
    for i, var in enumerate(env or ()):
        if not isinstance(var, Mapping):
            continue  # the schema reports it
        p = f"{path}[{i}]"
        name = var.get("name")
        if not isinstance(name, str) or not ENV_NAME.match(name):
            yield p, "must be an environment variable name: letters, digits, '_', '-', '.', not starting " \
                               "with a digit"
        ref = (var.get("valueFrom") or {}).get("secretKeyRef") if isinstance(var.get("valueFrom"), Mapping) else None
        if isinstance(ref, Mapping):
            yield from validate_secret_ref(ref.get("name"), ref.get("key"), f"{p}.valueFrom.secretKeyRef")


def validate_secret_ref(secret: Any, key: Any, path: str) -> Problems:
    """A Secret name (a DNS-1123 subdomain ≤ 253, dots allowed) and key (``IsConfigMapKey``: ``[-._a-zA-Z0-9]+``)."""
    if not isinstance(secret, str) or len(secret) > 253 or not DNS_1123_SUBDOMAIN.match(secret):
        yield f"{path}.name", "must name a Secret: a DNS-1123 subdomain (lower-case letters, digits, '-', '.')"
    if not isinstance(key, str) or len(key) > 253 or not CONFIG_MAP_KEY.match(key) or key in (".", ".."):
        yield f"{path}.key", "must be a Secret key: letters, digits, '-', '_', '.' (no spaces), ≤ 253 characters"


def validate_container(container: Any, path: str) -> Problems:
    """``validateContainers`` (the parts a template decides): name, image, resources, env."""
    if not isinstance(container, Mapping):
        return
    name = container.get("name")
    if not isinstance(name, str) or len(name) > 63 or not DNS_1123_LABEL.match(name):
        yield f"{path}.name", "must be a DNS-1123 label (lower-case letters, digits, '-', ≤ 63)"
    image = container.get("image")
    if not isinstance(image, str) or not image.strip() or any(ch.isspace() for ch in image):
        yield f"{path}.image", "every container needs an image reference, without spaces (the kubelet refuses " \
                               "it as InvalidImageName)"
    yield from validate_resource_requirements(container.get("resources"), f"{path}.resources")
    yield from validate_env(container.get("env"), f"{path}.env")


def validate_pod_template(template: Any, path: str) -> Problems:
    """``ValidatePodTemplateSpec``: metadata labels and annotations, the pod spec's containers, tolerations,
    node selector, service account and image pull secrets."""
    if not isinstance(template, Mapping):
        return
    meta = template.get("metadata") or {}
    if isinstance(meta, Mapping):
        yield from validate_labels(meta.get("labels"), f"{path}.metadata.labels")
        yield from validate_annotations(meta.get("annotations"), f"{path}.metadata.annotations")
    spec = template.get("spec") or {}
    if not isinstance(spec, Mapping):
        return
    for kind in ("initContainers", "containers"):
        for i, container in enumerate(spec.get(kind) or ()):
            yield from validate_container(container, f"{path}.spec.{kind}[{i}]")
    yield from validate_tolerations(spec.get("tolerations"), f"{path}.spec.tolerations")
    yield from validate_labels(spec.get("nodeSelector"), f"{path}.spec.nodeSelector")
    account = spec.get("serviceAccountName")
    if account is not None and (not isinstance(account, str) or not DNS_1123_SUBDOMAIN.match(account)):
        yield f"{path}.spec.serviceAccountName", "must be a DNS-1123 subdomain"
    for i, secret in enumerate(spec.get("imagePullSecrets") or ()):
        name = secret.get("name") if isinstance(secret, Mapping) else None
        if not isinstance(name, str) or len(name) > 253 or not DNS_1123_SUBDOMAIN.match(name):
            yield f"{path}.spec.imagePullSecrets[{i}].name", "must name a Secret: a DNS-1123 subdomain"
