"""deploy/rbac.yaml stays least-privilege: namespaced Roles only, no wildcard, no CRDs, no Secrets (fast, no server).

What the Roles must contain is checked against real request logs elsewhere
(tests/integration/test_rayjob_lifecycle.py::test_zz_rbac_role_grants_exactly_what_the_provider_used and
tests/local/test_sparkapps.py); here only what they must never contain.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.security.rbac import RAYJOB_ROLE, RBAC_FILE, SPARK_ROLE, allowed_rules, documents, rbac_of

ALLOWED_KINDS = {"Role", "RoleBinding"}
#: Resources whose access amounts to cluster administration or reading credentials.
FORBIDDEN_RESOURCES = {"customresourcedefinitions", "secrets", "roles", "rolebindings", "clusterroles",
                       "clusterrolebindings", "serviceaccounts/token", "pods/exec", "pods/attach", "nodes",
                       "namespaces", "mutatingwebhookconfigurations", "validatingwebhookconfigurations"}
FORBIDDEN_GROUPS = {"apiextensions.k8s.io", "rbac.authorization.k8s.io", "admissionregistration.k8s.io"}
FORBIDDEN_VERBS = {"escalate", "bind", "impersonate", "deletecollection"}


def violations(docs: list[dict[str, Any]]) -> list[str]:
    """Every reason the documents are not least-privilege (empty: fine)."""
    found = []
    role_names = {(d.get("metadata") or {}).get("name") for d in docs if d.get("kind") == "Role"}
    for doc in docs:
        kind, name = doc.get("kind"), (doc.get("metadata") or {}).get("name")
        where = f"{kind} {name}"
        if kind not in ALLOWED_KINDS:
            found.append(f"{where}: only namespaced Role/RoleBinding allowed")
            continue
        if not (doc.get("metadata") or {}).get("namespace"):
            found.append(f"{where}: has no metadata.namespace")
        if kind == "RoleBinding":
            ref = doc.get("roleRef") or {}
            if ref.get("kind") != "Role" or ref.get("name") not in role_names:
                found.append(f"{where}: roleRef must name a Role of this file, got {ref}")
            continue
        if doc.get("aggregationRule"):
            found.append(f"{where}: aggregationRule")
        for i, rule in enumerate(doc.get("rules") or []):
            at = f"{where} rules[{i}]"
            if rule.get("nonResourceURLs"):
                found.append(f"{at}: nonResourceURLs")
            if rule.get("resourceNames") and "*" in rule["resourceNames"]:
                found.append(f"{at}: wildcard resourceNames")
            for field in ("apiGroups", "resources", "verbs"):
                values = rule.get(field)
                if not values:
                    found.append(f"{at}: empty {field}")
                elif any("*" in str(v) for v in values):
                    found.append(f"{at}: wildcard in {field} {values}")
            for group in rule.get("apiGroups") or []:
                if group in FORBIDDEN_GROUPS:
                    found.append(f"{at}: apiGroup {group!r}")
            for resource in rule.get("resources") or []:
                if resource in FORBIDDEN_RESOURCES or resource.split("/")[0] in {"customresourcedefinitions", "secrets"}:
                    found.append(f"{at}: resource {resource!r}")
            for verb in rule.get("verbs") or []:
                if verb in FORBIDDEN_VERBS:
                    found.append(f"{at}: verb {verb!r}")
    return found


def test_rbac_file_grants_no_cluster_scoped_wildcard_crd_or_secret_access():
    docs = documents()
    assert {d["kind"] for d in docs} == ALLOWED_KINDS
    assert violations(docs) == []


def test_rbac_file_has_the_two_separate_roles_each_bound():
    docs = documents()
    roles = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Role"}
    bound = {d["roleRef"]["name"] for d in docs if d["kind"] == "RoleBinding"}
    assert set(roles) == {RAYJOB_ROLE, SPARK_ROLE} and bound == set(roles)
    rayjob, spark = allowed_rules(role=RAYJOB_ROLE), allowed_rules(role=SPARK_ROLE)
    assert {g for g, _, _ in rayjob} == {"ray.io", "", "batch"}
    assert {g for g, _, _ in spark} == {"sparkoperator.k8s.io", ""}
    assert not any(g == "sparkoperator.k8s.io" for g, _, _ in rayjob), "Spark rules belong to the Spark Role only"
    assert not any(g == "ray.io" for g, _, _ in spark), "Ray rules belong to the RayJob Role only"
    assert len({d["metadata"]["namespace"] for d in docs}) == 1


def test_rayjob_role_matches_what_the_issue_lists():
    """rayjobs, rayclusters, pods/log, events read and the submitter Job read; nothing that writes pods or Jobs."""
    rules = allowed_rules(role=RAYJOB_ROLE)
    assert ("ray.io", "rayjobs", "create") in rules and ("ray.io", "rayclusters", "delete") in rules
    assert ("", "pods/log", "get") in rules and ("", "events", "list") in rules
    assert {v for g, r, v in rules if (g, r) in {("", "pods"), ("", "events"), ("batch", "jobs")}} <= {
        "get", "list", "watch"}


def test_unknown_role_name_is_an_error():
    with pytest.raises(KeyError, match="no Role named 'nope'"):
        allowed_rules(role="nope")


BAD = [
    ("cluster-role", "kind: ClusterRole\nmetadata: {name: x}\nrules: []\n"),
    ("cluster-role-binding", "kind: ClusterRoleBinding\nmetadata: {name: x}\nroleRef: {kind: ClusterRole, name: x}\n"),
    ("wildcard-verb", 'kind: Role\nmetadata: {name: x, namespace: n}\nrules: [{apiGroups: ["ray.io"], '
                      'resources: ["rayjobs"], verbs: ["*"]}]\n'),
    ("wildcard-resource", 'kind: Role\nmetadata: {name: x, namespace: n}\nrules: [{apiGroups: ["ray.io"], '
                          'resources: ["*"], verbs: ["get"]}]\n'),
    ("wildcard-group", 'kind: Role\nmetadata: {name: x, namespace: n}\nrules: [{apiGroups: ["*"], '
                       'resources: ["rayjobs"], verbs: ["get"]}]\n'),
    ("crd-group", 'kind: Role\nmetadata: {name: x, namespace: n}\nrules: [{apiGroups: ["apiextensions.k8s.io"], '
                  'resources: ["widgets"], verbs: ["get"]}]\n'),
    ("crd-resource", 'kind: Role\nmetadata: {name: x, namespace: n}\nrules: [{apiGroups: ["ray.io"], '
                     'resources: ["customresourcedefinitions"], verbs: ["create"]}]\n'),
    ("secrets", 'kind: Role\nmetadata: {name: x, namespace: n}\nrules: [{apiGroups: [""], '
                'resources: ["secrets"], verbs: ["get"]}]\n'),
    ("binding-to-cluster-role", "kind: RoleBinding\nmetadata: {name: x, namespace: n}\n"
                                "roleRef: {kind: ClusterRole, name: admin}\n"),
    ("no-namespace", 'kind: Role\nmetadata: {name: x}\nrules: [{apiGroups: [""], resources: ["pods"], verbs: ["list"]}]\n'),
]


@pytest.mark.parametrize("text", [b[1] for b in BAD], ids=[b[0] for b in BAD])
def test_the_checker_catches_what_it_must(text: str, tmp_path: Path):
    """The file check above is not vacuous: each forbidden construct is reported."""
    path = tmp_path / "rbac.yaml"
    path.write_text(RBAC_FILE.read_text() + "---\n" + text)
    assert len(violations(documents(path))) == 1


@pytest.mark.parametrize(("method", "path", "query", "expected"), [
    ("GET", "/apis/ray.io/v1/namespaces/ns/rayjobs", {"watch": "true"}, ("ray.io", "rayjobs", "watch")),
    ("GET", "/apis/ray.io/v1/rayjobs", {}, ("ray.io", "rayjobs", "list")),
    ("GET", "/api/v1/namespaces/ns/pods/p/log", {}, ("", "pods/log", "get")),
    ("GET", "/apis/sparkoperator.k8s.io/v1beta2/namespaces/ns/sparkapplications/a/status", {},
     ("sparkoperator.k8s.io", "sparkapplications/status", "get")),
    ("DELETE", "/apis/ray.io/v1/namespaces/ns/rayclusters", {}, ("ray.io", "rayclusters", "deletecollection")),
    ("GET", "/apis", {}, None),
    ("GET", "/version", {}, None),
])
def test_requests_map_to_rbac_rules(method, path, query, expected):
    assert rbac_of(method, path, query) == expected


def test_every_document_parses():
    assert all(isinstance(d, dict) for d in yaml.safe_load_all(RBAC_FILE.read_text()) if d is not None)
