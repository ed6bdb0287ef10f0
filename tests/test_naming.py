"""Deterministic RayJob names and valid labels from a task instance's identity."""

from __future__ import annotations

import itertools
import re

import pytest

from kuberay_provider import constants as c
from kuberay_provider.errors import InvalidParameterError
from kuberay_provider.naming import (
    TaskInstanceIdentity,
    label_selector,
    sanitize_label_value,
    slugify,
    validate_labels,
    validate_namespace,
    validate_rayjob_name,
)

# Independent restatements of the Kubernetes rules (not imported from the module under test).
DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")

NASTY_IDS = [
    "scheduled__2026-11-22T00:00:00+00:00",
    "manual__2026-11-22T10:11:12.123456+00:00",
    "backfill__2026-01-01T00:00:00+00:00",
    "dataset_triggered__2026-11-22T00:00:00.000001+00:00",
    "x",
    "1",
    "9starts_with_digit",
    "-leading-dash",
    "trailing-dash-",
    "___",
    "...",
    "a.b.c",
    "UPPER_Case.Mixed-ID",
    "tâche_über_日本語",
    "日本語のみ",
    "🚀🔥",
    "emoji🚀in🔥middle",
    "spaces in id",
    "tab\tand\nnewline",
    "slash/and\\backslash",
    "quote'\"`",
    "a" * 63,
    "a" * 64,
    "a" * 300,
    "é" * 300,
    "-" * 300,
    "x-" * 150,
    "9" * 300,
    "a" + "_" * 298 + "b",
    "",
]

IDENTITIES = [
    TaskInstanceIdentity(dag_id=d, task_id=t, run_id=r, map_index=m, try_number=n)
    for d, t, r, m, n in [
        ("etl", "train", "scheduled__2026-11-22T00:00:00+00:00", -1, 1),
        ("etl", "train", "manual__2026-11-22T10:11:12.123456+00:00", 3, 2),
        ("A" * 300, "B" * 300, "C" * 300, 99999, 17),
        ("日本語", "タスク", "実行", -1, 1),
        ("123", "456", "789", 0, 1),
        ("-", "-", "-", -1, 1),
        ("", "", "", -1, 1),
        ("dag.with.dots", "group.task_in_group", "r", 12, 100),
        ("🚀", "🔥", "💥", 1, 1),
    ]
] + [TaskInstanceIdentity(d, t, r) for d, t, r in itertools.product(NASTY_IDS[::3], NASTY_IDS[1::4], NASTY_IDS[2::5])]


def _check_name(name: str) -> None:
    assert len(name) <= c.MAX_RAYJOB_NAME_LENGTH, name
    assert DNS_1035.match(name), name
    assert validate_rayjob_name(name) == name


def _failures(check, identities=IDENTITIES) -> list[str]:
    """Run ``check`` on every identity; the identities it fails for (one behaviour, many inputs: one test)."""
    failed = []
    for ident in identities:
        try:
            check(ident)
        except AssertionError as exc:
            failed.append(f"{ident!r}: {exc}")
    return failed


def _check_rayjob_names(ident: TaskInstanceIdentity) -> None:
    _check_name(ident.rayjob_name())
    for prefix in ("custom", "Custom Prefix!", "9lives", "x" * 200, "日本", "-"):
        _check_name(ident.rayjob_name(prefix))


def test_rayjob_name_is_a_valid_dns1035_label_of_at_most_47_chars():
    assert len(IDENTITIES) > 400
    assert _failures(_check_rayjob_names) == []


def test_the_identity_sweep_can_fail():
    assert _failures(lambda ident: _check_name(ident.rayjob_name() + "-Bad"), IDENTITIES[:3]) != []


def test_labels_and_annotations_are_valid():
    assert _failures(_check_labels) == []


def _check_labels(ident: TaskInstanceIdentity) -> None:
    labels = ident.labels()
    assert validate_labels(labels) == labels
    for value in labels.values():
        assert len(value) <= 63 and LABEL_VALUE.match(value), value
    assert labels[c.MANAGED_BY_LABEL] == c.MANAGED_BY_VALUE
    assert labels[c.TASK_INSTANCE_LABEL] == ident.key
    assert labels[c.TRY_NUMBER_LABEL] == str(ident.try_number)
    # Annotations keep the exact identity (labels may be lossy).
    assert ident.annotations() == {
        c.DAG_ID_ANNOTATION: ident.dag_id, c.TASK_ID_ANNOTATION: ident.task_id, c.RUN_ID_ANNOTATION: ident.run_id,
    }


def test_not_mapped_map_index_label_is_a_valid_value():
    labels = TaskInstanceIdentity("d", "t", "r", map_index=-1).labels()
    assert LABEL_VALUE.match(labels[c.MAP_INDEX_LABEL])
    assert labels[c.MAP_INDEX_LABEL] != TaskInstanceIdentity("d", "t", "r", map_index=1).labels()[c.MAP_INDEX_LABEL]
    assert TaskInstanceIdentity("d", "t", "r", map_index=7).labels()[c.MAP_INDEX_LABEL] == "7"


def test_name_is_deterministic():
    a = TaskInstanceIdentity("etl", "train", "scheduled__2026-11-22T00:00:00+00:00", 2, 3)
    b = TaskInstanceIdentity("etl", "train", "scheduled__2026-11-22T00:00:00+00:00", 2, 3)
    assert a.rayjob_name() == b.rayjob_name()
    assert a.key == b.key
    assert a.labels() == b.labels()
    # Pinned: a change in the hashing would orphan RayJobs of tasks running during an upgrade.
    assert TaskInstanceIdentity("etl", "train", "r1").rayjob_name() == "etl-train-78282caf08-1"
    assert re.fullmatch(r"[0-9a-f]{10}", a.key)


def test_readable_shape():
    ident = TaskInstanceIdentity("My_DAG", "Train.Model", "manual__1", map_index=-1, try_number=2)
    name = ident.rayjob_name()
    assert name == f"my-dag-train-model-{ident.key}-2"
    mapped = TaskInstanceIdentity("my_dag", "train", "manual__1", map_index=4, try_number=1).rayjob_name()
    assert mapped.startswith("my-dag-train-m4-")
    assert ident.rayjob_name("etl") == f"etl-{ident.key}-2"


def test_names_differ_per_try_map_index_run_dag_and_task():
    base = dict(dag_id="etl", task_id="train", run_id="scheduled__2026-11-22T00:00:00+00:00", map_index=-1, try_number=1)
    variants = [
        base,
        {**base, "try_number": 2},
        {**base, "try_number": 11},
        {**base, "map_index": 0},
        {**base, "map_index": 1},
        {**base, "map_index": 10},
        {**base, "run_id": "scheduled__2026-11-23T00:00:00+00:00"},
        {**base, "run_id": "manual__2026-11-22T00:00:00+00:00"},
        {**base, "dag_id": "etl2"},
        {**base, "task_id": "train2"},
        # Same slug, different identity: the hash keeps them apart.
        {**base, "dag_id": "etl-train", "task_id": ""},
        {**base, "dag_id": "ETL", "task_id": "TRAIN"},
    ]
    names = [TaskInstanceIdentity(**v).rayjob_name() for v in variants]
    assert len(set(names)) == len(names), names
    # The same with a fixed prefix (only hash and try distinguish them).
    prefixed = [TaskInstanceIdentity(**v).rayjob_name("job") for v in variants]
    assert len(set(prefixed)) == len(prefixed), prefixed


def test_key_is_shared_by_all_tries_and_differs_per_instance():
    one = TaskInstanceIdentity("d", "t", "r", 0, 1)
    assert one.key == TaskInstanceIdentity("d", "t", "r", 0, 5).key
    assert one.key != TaskInstanceIdentity("d", "t", "r", 1, 1).key
    assert one.key != TaskInstanceIdentity("d", "t", "r2", 0, 1).key
    # The separator prevents ("ab", "c") and ("a", "bc") from colliding.
    assert TaskInstanceIdentity("ab", "c", "r").key != TaskInstanceIdentity("a", "bc", "r").key


def test_long_ids_are_truncated_but_still_unique():
    long_a = TaskInstanceIdentity("d" * 300, "t" * 300, "run-a")
    long_b = TaskInstanceIdentity("d" * 300, "t" * 300, "run-b")
    assert len(long_a.rayjob_name()) == c.MAX_RAYJOB_NAME_LENGTH
    assert long_a.rayjob_name() != long_b.rayjob_name()
    assert long_a.labels()[c.DAG_ID_LABEL] != TaskInstanceIdentity("d" * 299 + "e", "t", "r").labels()[c.DAG_ID_LABEL]


def test_large_try_numbers_still_fit():
    for n in (1, 9, 10, 99, 100, 12345, 10**8):
        _check_name(TaskInstanceIdentity("a" * 100, "b", "r", try_number=n).rayjob_name())


@pytest.mark.parametrize("value", NASTY_IDS, ids=lambda v: repr(v)[:40])
def test_sanitize_label_value(value):
    out = sanitize_label_value(value)
    assert len(out) <= 63
    assert LABEL_VALUE.match(out), out
    assert sanitize_label_value(value) == out
    if re.fullmatch(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?", value):
        assert out == value  # already valid values are kept as they are


def test_sanitize_keeps_long_values_distinct():
    a, b = "run_" + "x" * 100 + "a", "run_" + "x" * 100 + "b"
    assert sanitize_label_value(a) != sanitize_label_value(b)
    assert sanitize_label_value("scheduled__2026-11-22T00:00:00+00:00") == "scheduled__2026-11-22T00_00_00_00_00"


@pytest.mark.parametrize(
    ("text", "slug"),
    [("My DAG", "my-dag"), ("a__b..c", "a-b-c"), ("--x--", "x"), ("日本", ""), ("A1-b2", "a1-b2"), ("", "")],
)
def test_slugify(text, slug):
    assert slugify(text) == slug


@pytest.mark.parametrize("name", ["a", "train", "a-b", "a1", "x" * 47, "a-" * 23 + "b"])
def test_validate_rayjob_name_accepts(name):
    assert validate_rayjob_name(name) == name


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("x" * 48, "at most 47"),
        ("Train", "DNS-1035"),
        ("1job", "DNS-1035"),
        ("my.job", "DNS-1035"),
        ("my_job", "DNS-1035"),
        ("job-", "DNS-1035"),
        ("-job", "DNS-1035"),
        ("jöb", "DNS-1035"),
        ("a b", "DNS-1035"),
        ("", "non-empty"),
        (None, "non-empty"),
        (42, "non-empty"),
    ],
)
def test_validate_rayjob_name_rejects(name, rule):
    with pytest.raises(InvalidParameterError) as err:
        validate_rayjob_name(name, "name")
    assert err.value.parameter == "name"
    assert rule in str(err.value)
    assert str(err.value).startswith(f"Invalid name={name!r}"[:60])


@pytest.mark.parametrize("ns", ["default", "ray", "a", "1ns", "team-a-1", "x" * 63])
def test_validate_namespace_accepts(ns):
    assert validate_namespace(ns) == ns


@pytest.mark.parametrize("ns", ["", "Default", "x" * 64, "a_b", "a.b", "-a", "a-", None, 5, "ns "])
def test_validate_namespace_rejects(ns):
    with pytest.raises(InvalidParameterError, match=r"Invalid namespace="):
        validate_namespace(ns)


@pytest.mark.parametrize(
    "labels",
    [
        {},
        {"app": "x"},
        {"example.com/team": "ml", "a": ""},
        {"a.b-c_d": "A.b-C_9"},
        {"k": "v" * 63},
        {"sub.domain.example.com/" + "n" * 63: "v"},
    ],
)
def test_validate_labels_accepts(labels):
    assert validate_labels(labels) == labels


@pytest.mark.parametrize(
    ("labels", "bad"),
    [
        ({"app": "has space"}, "has space"),
        ({"app": "-lead"}, "-lead"),
        ({"app": "trail."}, "trail."),
        ({"app": "v" * 64}, "v" * 64),
        ({"app": 3}, 3),
        ({"app": None}, None),
        ({"app": "scheduled__2026-11-22T00:00:00+00:00"}, "scheduled__2026-11-22T00:00:00+00:00"),
        ({"bad key": "v"}, "bad key"),
        ({"": "v"}, ""),
        ({"n" * 64: "v"}, "n" * 64),
        ({"Bad_Prefix/name": "v"}, "Bad_Prefix/name"),
        ({"/name": "v"}, "/name"),
        ({"example.com/": "v"}, "example.com/"),
        ({1: "v"}, 1),
    ],
)
def test_validate_labels_rejects_naming_the_key(labels, bad):
    with pytest.raises(InvalidParameterError) as err:
        validate_labels(labels)
    key = next(iter(labels))
    assert err.value.parameter == f"labels[{key!r}]"
    assert err.value.value == bad


def test_validate_labels_rejects_non_mapping():
    with pytest.raises(InvalidParameterError, match="labels"):
        validate_labels([("a", "b")])  # type: ignore[arg-type]


def test_label_selector_is_sorted_and_stable():
    assert label_selector({"b": "2", "a": "1"}) == "a=1,b=2"
    assert label_selector({}) == ""
