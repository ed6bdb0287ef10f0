"""RayJobWaiter: the sans-I/O wait loop (resume, 410 re-list, backoff, bookmarks, deletion, timeout)."""

from __future__ import annotations

import json

import pytest

from kuberay_provider.hooks.retry import ApiFailure, RetryPolicy
from kuberay_provider.hooks.watching import (
    Finished,
    Get,
    Gone,
    RayJobWaiter,
    RayJobWaitError,
    Sleep,
    TimedOut,
    Watch,
    WatchEvent,
    parse_watch_line,
)
from kuberay_provider.status import Phase, RayJobStatus
from tests.rayjob_sequences import NAME, NAMESPACE, SEQUENCES, rayjob_object, sequence_objects


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def waiter(clock=None, **kw) -> RayJobWaiter:
    kw.setdefault("watch_jitter", 0.0)
    return RayJobWaiter(NAME, NAMESPACE, clock=clock or Clock(), **kw)


def modified(obj) -> WatchEvent:
    return WatchEvent("MODIFIED", obj)


def start(w: RayJobWaiter, obj) -> None:
    """Answer the initial Get."""
    assert isinstance(w.next_action(), Get)
    w.on_object(obj)


# -- the documented sequences ------------------------------------------------------------------------------

@pytest.mark.parametrize("sequence", sorted(SEQUENCES))
def test_sequence_in_one_watch_stream(sequence):
    writes, final, _ = SEQUENCES[sequence]
    objects = sequence_objects(writes)
    w = waiter()
    start(w, objects[0][0])
    assert w.last.phase == Phase(objects[0][1])
    action = w.next_action()
    assert action == Watch(resource_version="100", timeout_seconds=60)
    for i, (obj, expected) in enumerate(objects[1:], start=1):
        assert not w.done, f"decided before write {i}"
        w.on_event(modified(obj))
        assert w.last.phase == Phase(expected), f"write {i}"
        assert w.last.resource_version == str(100 + i)
    action = w.next_action()
    if Phase(final).is_terminal:
        assert w.done
        assert isinstance(action, Finished)
        assert action.status.phase == Phase(final)
        assert action.status.is_success == (final == "succeeded")
        assert action.status == w.last
    else:
        assert not w.done
        assert action == Watch(resource_version=str(100 + len(objects) - 1), timeout_seconds=60)


@pytest.mark.parametrize("sequence", sorted(SEQUENCES))
def test_sequence_one_write_per_watch_resumes_from_last_resource_version(sequence):
    writes, final, _ = SEQUENCES[sequence]
    objects = sequence_objects(writes)
    clock = Clock()
    w = waiter(clock)
    start(w, objects[0][0])
    for i, (obj, expected) in enumerate(objects[1:], start=1):
        action = w.next_action()
        assert isinstance(action, Watch), action
        assert action.resource_version == str(100 + i - 1)  # resume exactly where the last event left off
        w.on_event(modified(obj))
        assert w.last.phase == Phase(expected)
        clock.advance(10)  # well under relist_every for every sequence
        w.on_watch_closed(events_seen=1, seconds=10)
    assert w.gets == 1  # no re-list needed on a healthy stream
    assert isinstance(w.next_action(), Finished) == Phase(final).is_terminal


def test_sequence_seen_only_through_gets_polling():
    """A driver that only re-lists (e.g. after every watch failure) reaches the same outcome."""
    writes, _, _ = SEQUENCES["s5-retries-then-success"]
    clock = Clock()
    w = waiter(clock, relist_every=10)
    for obj, expected in sequence_objects(writes):
        action = w.next_action()
        assert isinstance(action, Get)
        w.on_object(obj)
        assert w.last.phase == Phase(expected)
        clock.advance(11)
    final = w.next_action()
    assert isinstance(final, Finished) and final.status.is_success
    assert final.status.failed == 2 and final.status.succeeded == 1


def test_changes_are_reported_once():
    w = waiter()
    first = rayjob_object("Initializing", rv=1, rayClusterName="rc-a")
    assert assert_reported(w, first)
    assert w.on_event(modified(rayjob_object("Initializing", rv=2, rayClusterName="rc-a"))) is None  # same state
    assert w.on_event(modified(rayjob_object("Running", rv=3, rayClusterName="rc-a"))).deployment_status == "Running"
    # Only the cluster changed (a retry or resume): reported.
    assert w.on_event(modified(rayjob_object("Running", rv=4, rayClusterName="rc-b"))).cluster_name == "rc-b"
    # Deletion started (§9: status unchanged, deletionTimestamp set): reported and not terminal.
    deleting = w.on_event(modified(rayjob_object("Running", rv=5, rayClusterName="rc-b", deleting=True)))
    assert deleting is not None and deleting.deleting and not w.done


def assert_reported(w, obj):
    assert isinstance(w.next_action(), Get)
    return w.on_object(obj) is not None


# -- deletion -------------------------------------------------------------------------------------------------

def test_deleted_event_ends_the_wait_as_gone():
    w = waiter()
    start(w, rayjob_object("Running", "RUNNING", rv=5))
    w.on_event(modified(rayjob_object("Running", "RUNNING", rv=6, deleting=True)))
    assert not w.done
    w.on_event(WatchEvent("DELETED", rayjob_object("Running", "RUNNING", rv=7, deleting=True)))
    action = w.next_action()
    assert isinstance(action, Gone)
    assert action.last.deleting and action.last.job_status == "RUNNING"
    assert w.done and w.next_action() == action  # sticky


def test_get_404_ends_the_wait_as_gone_with_the_last_status():
    clock = Clock()
    w = waiter(clock, relist_every=60)
    start(w, rayjob_object("Running", "RUNNING", rv=5))
    clock.advance(61)
    assert isinstance(w.next_action(), Get)
    w.on_object(None)
    action = w.next_action()
    assert isinstance(action, Gone) and action.last.deployment_status == "Running"


def test_missing_from_the_start_is_gone_without_status():
    w = waiter()
    assert isinstance(w.next_action(), Get)
    w.on_object(None)
    assert w.next_action() == Gone(None)


def test_events_for_other_objects_are_ignored():
    w = waiter()
    start(w, rayjob_object("Running", rv=5))
    assert w.on_event(modified(rayjob_object("Complete", "SUCCEEDED", rv=6, name="other"))) is None
    assert w.on_event(WatchEvent("DELETED", rayjob_object("Running", rv=7, name="other"))) is None
    assert not w.done
    assert w.next_action() == Watch("5", 60)  # the other object's resourceVersion was not taken


def test_added_event_counts_like_modified():
    w = waiter()
    start(w, rayjob_object("Running", rv=5))
    w.on_event(WatchEvent("ADDED", rayjob_object("Complete", "SUCCEEDED", rv=6)))
    assert isinstance(w.next_action(), Finished)


def test_none_event_is_ignored():
    w = waiter()
    start(w, rayjob_object("Running", rv=5))
    assert w.on_event(None) is None
    assert w.next_action() == Watch("5", 60)


# -- resourceVersion, bookmarks, 410 ----------------------------------------------------------------------------

def test_bookmark_moves_the_resume_point_without_a_status_change():
    w = waiter()
    start(w, rayjob_object("Running", "RUNNING", rv=5))
    assert w.on_event(WatchEvent("BOOKMARK", {"kind": "RayJob", "metadata": {"resourceVersion": "900"}})) is None
    assert w.last.resource_version == "5"
    w.on_watch_closed(events_seen=1, seconds=60)
    assert w.next_action() == Watch("900", 60)
    # A bookmark without a resourceVersion changes nothing.
    w.on_event(WatchEvent("BOOKMARK", {"metadata": {}}))
    assert w.next_action() == Watch("900", 60)


@pytest.mark.parametrize("how", ["error-event", "failure"])
def test_410_gone_relists_then_watches_from_the_fresh_version(how):
    w = waiter()
    start(w, rayjob_object("Running", "RUNNING", rv=5))
    assert w.next_action() == Watch("5", 60)
    if how == "error-event":
        w.on_event(WatchEvent("ERROR", {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"}))
    else:
        w.on_failure(ApiFailure(410, "Gone"))
    action = w.next_action()
    assert isinstance(action, Get)  # no sleep: a re-list is the cure
    w.on_object(rayjob_object("Running", "RUNNING", rv=77))
    assert w.next_action() == Watch("77", 60)


def test_410_while_the_object_changed_meanwhile_finishes_from_the_relist():
    w = waiter()
    start(w, rayjob_object("Running", "RUNNING", rv=5))
    w.next_action()
    w.on_failure(ApiFailure(410, "Gone"))
    w.next_action()
    w.on_object(rayjob_object("Failed", "RUNNING", "DeadlineExceeded", rv=99))
    action = w.next_action()
    assert isinstance(action, Finished)
    assert "activeDeadlineSeconds" in action.status.describe()


def test_404_on_watch_relists():
    w = waiter()
    start(w, rayjob_object("Running", rv=5))
    w.next_action()
    w.on_failure(ApiFailure(404, "not found"))
    assert isinstance(w.next_action(), Get)


def test_periodic_relist_even_when_the_watch_is_healthy():
    clock = Clock()
    w = waiter(clock, relist_every=300)
    start(w, rayjob_object("Running", rv=5))
    for _ in range(4):
        assert isinstance(w.next_action(), Watch)
        clock.advance(60)
        w.on_watch_closed(events_seen=0, seconds=60)
    clock.advance(60)
    assert isinstance(w.next_action(), Get)
    assert w.gets == 2 and w.watches_started == 4


# -- failures and backoff -------------------------------------------------------------------------------------------

def test_transient_failures_back_off_and_a_second_one_relists():
    clock = Clock()
    w = waiter(clock, retry=RetryPolicy(base=1.0, cap=8.0, jitter=0.0))
    start(w, rayjob_object("Running", rv=5))
    w.next_action()
    w.on_failure(ApiFailure(503, "unavailable"))
    assert w.next_action() == Sleep(1.0)
    assert w.next_action() == Watch("5", 60)  # one failure: just watch again
    w.on_failure(ApiFailure(None, "connection reset"))
    assert w.next_action() == Sleep(2.0)
    assert isinstance(w.next_action(), Get)  # repeated failures: re-read the object
    w.on_failure(ApiFailure(500, "boom"))
    assert w.next_action() == Sleep(4.0)
    assert isinstance(w.next_action(), Get)
    w.on_object(rayjob_object("Running", rv=6))  # success resets the backoff
    w.next_action()
    w.on_failure(ApiFailure(429, "slow down"))
    assert w.next_action() == Sleep(1.0)


def test_backoff_is_capped_during_a_long_outage_and_never_busy_loops():
    clock = Clock()
    w = waiter(clock, timeout=3600, retry=RetryPolicy(base=0.5, cap=15.0, jitter=0.2))
    start(w, rayjob_object("Running", rv=5))
    sleeps = []
    while True:
        action = w.next_action()
        if isinstance(action, TimedOut):
            break
        if isinstance(action, Sleep):
            assert 0 < action.seconds <= 15.0 * 1.2
            sleeps.append(action.seconds)
            clock.advance(action.seconds)
            continue
        w.on_failure(ApiFailure(None, "connection refused"))
    assert len(sleeps) < 3600 / 10  # bounded number of attempts per hour
    assert sum(sleeps) == pytest.approx(3600, abs=1)
    assert max(sleeps) >= 12  # it did reach the cap


def test_error_event_with_a_server_error_backs_off():
    w = waiter(retry=RetryPolicy(base=2.0, jitter=0.0))
    start(w, rayjob_object("Running", rv=5))
    w.next_action()
    w.on_event(WatchEvent("ERROR", {"code": 500, "message": "etcd"}))
    assert w.next_action() == Sleep(2.0)


@pytest.mark.parametrize("status", [400, 401, 403, 422])
def test_non_retryable_errors_raise_naming_the_rayjob(status):
    w = waiter()
    start(w, rayjob_object("Running", rv=5))
    w.next_action()
    with pytest.raises(RayJobWaitError) as err:
        w.on_failure(ApiFailure(status, "forbidden: rayjobs.ray.io is forbidden"))
    assert str(status) in str(err.value) and f"{NAMESPACE}/{NAME}" in str(err.value)
    with pytest.raises(RayJobWaitError, match="403"):
        w.on_event(WatchEvent("ERROR", {"code": 403, "message": "forbidden"}))


def test_a_watch_that_closes_at_once_counts_as_a_failure():
    w = waiter(retry=RetryPolicy(base=1.0, jitter=0.0), min_watch_seconds=1.0)
    start(w, rayjob_object("Running", rv=5))
    w.next_action()
    w.on_watch_closed(events_seen=0, seconds=0.01)
    assert w.next_action() == Sleep(1.0)
    assert isinstance(w.next_action(), Watch)
    w.on_watch_closed(events_seen=0, seconds=0.01)
    assert w.next_action() == Sleep(2.0)


def test_a_normal_watch_close_resets_failures_and_resumes():
    w = waiter(retry=RetryPolicy(base=1.0, jitter=0.0))
    start(w, rayjob_object("Running", rv=5))
    w.next_action()
    w.on_failure(ApiFailure(503, "x"))
    w.next_action()  # sleep
    w.next_action()  # watch
    w.on_watch_closed(events_seen=0, seconds=60)  # server-side timeout: healthy
    assert w.next_action() == Watch("5", 60)
    w.on_failure(ApiFailure(503, "x"))
    assert w.next_action() == Sleep(1.0)  # counter was reset


# -- timeout --------------------------------------------------------------------------------------------------------

def test_timeout_returns_the_last_status():
    clock = Clock()
    w = waiter(clock, timeout=100)
    start(w, rayjob_object("Running", "RUNNING", rv=5))
    assert w.remaining() == 100
    clock.advance(100)
    action = w.next_action()
    assert isinstance(action, TimedOut) and action.last.job_status == "RUNNING"
    assert not w.done  # the caller decides (delete the RayJob) - the waiter does not claim a result


def test_zero_timeout_means_already_out_of_time_not_forever():
    w = waiter(timeout=0)
    assert w.next_action() == TimedOut(None)


def test_no_timeout_waits_forever():
    clock = Clock()
    w = waiter(clock, timeout=None)
    start(w, rayjob_object("Running", rv=5))
    clock.advance(10**7)
    assert w.remaining() is None
    assert not isinstance(w.next_action(), TimedOut)


def test_watch_timeout_and_sleep_respect_the_deadline():
    clock = Clock()
    w = waiter(clock, timeout=10.5, watch_timeout=60, retry=RetryPolicy(base=30.0, cap=60.0, jitter=0.0))
    start(w, rayjob_object("Running", rv=5))
    action = w.next_action()
    assert isinstance(action, Watch) and 1 <= action.timeout_seconds <= 11
    clock.advance(10)
    w.on_failure(ApiFailure(503, "x"))
    action = w.next_action()
    assert isinstance(action, Sleep) and action.seconds == pytest.approx(0.5)
    clock.advance(0.5)
    assert isinstance(w.next_action(), TimedOut)


def test_a_finished_job_wins_over_an_expired_deadline():
    clock = Clock()
    w = waiter(clock, timeout=5)
    start(w, rayjob_object("Complete", "SUCCEEDED", rv=5))
    clock.advance(60)
    assert isinstance(w.next_action(), Finished)


# -- parsing ----------------------------------------------------------------------------------------------------------

def test_parse_watch_line():
    obj = rayjob_object("Running", rv=5)
    line = json.dumps({"type": "MODIFIED", "object": obj})
    assert parse_watch_line(line) == WatchEvent("MODIFIED", obj)
    assert parse_watch_line(line.encode() + b"\n") == WatchEvent("MODIFIED", obj)
    err = parse_watch_line(b'{"type": "ERROR", "object": {"kind": "Status", "code": 410}}')
    assert err.error_code == 410
    assert parse_watch_line('{"type": "ERROR", "object": {"code": "410"}}').error_code is None
    assert parse_watch_line(line).error_code is None
    assert parse_watch_line('{"type": "BOOKMARK", "object": null}') == WatchEvent("BOOKMARK", {})


@pytest.mark.parametrize("line", ["", "  \n", b"", "{not json", "[1, 2]", '"text"', '{"object": {}}', b"\xff\xfe{", "null"])
def test_parse_watch_line_ignores_junk(line):
    assert parse_watch_line(line) is None


def test_thousands_of_failures_do_not_overflow_the_backoff():
    clock = Clock()
    w = waiter(clock)
    start(w, rayjob_object("Running", rv=5))
    for _ in range(2000):  # ~8 hours of a dead API server at the 15 s cap
        w.next_action()
        w.on_failure(ApiFailure(None, "connection refused"))
        action = w.next_action()
        assert isinstance(action, Sleep) and action.seconds <= 15.0 * 1.2


# -- a driver against a flaky fake API server -------------------------------------------------------------------


class FakeApi:
    """Serves a sequence of writes one by one; compacts history, drops streams and fails at random (seeded)."""

    def __init__(self, objects, seed: int) -> None:
        import random

        self.objects = objects
        self.rng = random.Random(seed)
        self.written = 1  # the first write exists when the wait starts
        self.compacted_below = 0

    def tick(self) -> None:
        if self.written < len(self.objects) and self.rng.random() < 0.6:
            self.written += 1
        if self.rng.random() < 0.2:
            self.compacted_below = self.written - 1  # etcd compaction: older resourceVersions are gone

    def rv(self, i: int) -> int:
        return int(self.objects[i]["metadata"]["resourceVersion"])

    def get(self):
        self.tick()
        if self.rng.random() < 0.1:
            raise ConnectionError("connection reset")
        return self.objects[self.written - 1]

    def watch(self, resource_version: str | None):
        self.tick()
        if self.rng.random() < 0.1:
            raise ConnectionError("connection refused")
        start = int(resource_version) if resource_version else self.rv(self.written - 1)
        if start < self.rv(self.compacted_below):
            yield WatchEvent("ERROR", {"kind": "Status", "code": 410, "message": "too old resource version"})
            return
        for i in range(self.written):
            if self.rv(i) > start:
                if self.rng.random() < 0.1:
                    yield WatchEvent("BOOKMARK", {"metadata": {"resourceVersion": str(self.rv(i) - 1)}})
                yield WatchEvent("MODIFIED", self.objects[i])
                if self.rng.random() < 0.15:
                    return  # stream dropped mid-way


def drive(w: RayJobWaiter, api: FakeApi, clock: Clock, max_steps: int = 5000):
    """What the sync hook does, with a fake clock instead of time.sleep."""
    seen_rvs = []
    for _ in range(max_steps):
        action = w.next_action()
        if isinstance(action, (Finished, Gone, TimedOut)):
            return action, seen_rvs
        if isinstance(action, Sleep):
            clock.advance(action.seconds)
            continue
        try:
            if isinstance(action, Get):
                changed = w.on_object(api.get())
            else:
                events = 0
                for event in api.watch(action.resource_version):
                    events += 1
                    changed = w.on_event(event)
                    if changed is not None:
                        seen_rvs.append(int(changed.resource_version))
                    if w.done:
                        break
                # An idle watch lasts until the server-side timeout; one with events ended early.
                seconds = float(action.timeout_seconds) if events == 0 else 5.0
                clock.advance(seconds)
                w.on_watch_closed(events, seconds)
                continue
            if changed is not None:
                seen_rvs.append(int(changed.resource_version))
        except ConnectionError as exc:
            w.on_failure(ApiFailure(None, str(exc)))
    raise AssertionError("the waiter never finished")


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("sequence", sorted(SEQUENCES))
def test_flaky_api_reaches_the_same_outcome(sequence, seed):
    writes, final, _ = SEQUENCES[sequence]
    objects = [obj for obj, _ in sequence_objects(writes)]
    clock = Clock()
    w = waiter(clock, timeout=3600, retry=RetryPolicy(base=0.5, cap=15.0, jitter=0.2))
    action, seen = drive(w, FakeApi(objects, seed), clock)
    assert seen == sorted(seen), "reported an older state after a newer one"
    if Phase(final).is_terminal:
        assert isinstance(action, Finished)
        assert action.status == RayJobStatus.from_object(objects[-1])
        assert action.status.phase == Phase(final)
    else:
        assert isinstance(action, TimedOut)
        assert action.last == RayJobStatus.from_object(objects[-1])
