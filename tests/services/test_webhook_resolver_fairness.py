"""One webhook host whose DNS hangs must not starve the others.

Look-ups of one (host, port) share one resolver thread, so a dead host cannot take every thread; and a
delivery that found no free thread was not attempted, so the sweeper neither counts it nor lets it
drift toward dead. The system resolver is stood in for by a fake ``getaddrinfo`` whose hanging names
block on an event; everything else (the resolver threads, post_webhook, the sweeper, the database and an
HTTP receiver on 127.0.0.1) is real.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from app.models import OutboxMessage
from app.services.delivery import (
    MAX_ATTEMPTS,
    NOT_ATTEMPTED_DELAY,
    RESOLVER_THREADS,
    DeliveryResult,
    ResolverBusy,
    post_webhook,
    resolve_host,
)
from app.services.notifications import MAX_DEFERRALS
from tests.http.helpers import logged_attempts

SECRET = "a-webhook-secret-of-some-length"
NOW = 1_750_000_000
DEAD = "dead.example.test"
HEALTHY = "healthy.example.test"


class HangingDns:
    """Stands in for ``socket.getaddrinfo``: names in ``answers`` answer with those addresses, names in
    ``hanging`` first block until ``release`` is set (10 s at most, so a broken test still ends), IP
    literals (what connecting asks) resolve as usual, any other name does not resolve. ``calls`` lists every
    name asked but the literals; ``most_hung`` is the most look-ups of one name blocked at the same time."""

    def __init__(self, real: Callable[..., Any]) -> None:
        self.real = real
        self.answers: dict[str, str] = {}
        self.hanging: set[str] = set()
        self.release = threading.Event()
        self.calls: list[str] = []
        self.hung: dict[str, int] = {}
        self.most_hung: dict[str, int] = {}
        self._arrived = threading.Semaphore(0)
        self._lock = threading.Lock()

    def __call__(self, host: str, port: int, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            pass
        else:
            return list(self.real(host, port, *args, **kwargs))
        with self._lock:
            self.calls.append(host)
        if host in self.hanging and not self.release.is_set():
            with self._lock:
                self.hung[host] = self.hung.get(host, 0) + 1
                self.most_hung[host] = max(self.most_hung.get(host, 0), self.hung[host])
            self._arrived.release()
            try:
                self.release.wait(10.0)
            finally:
                with self._lock:
                    self.hung[host] -= 1
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (self.answers[host], port))]

    def wait_until_hung(self, count: int) -> None:
        for _ in range(count):
            assert self._arrived.acquire(timeout=10.0), "a look-up never reached the resolver"


def resolver_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("resolve ") and t.is_alive()]


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> Iterator[HangingDns]:
    fake = HangingDns(socket.getaddrinfo)
    monkeypatch.setattr(socket, "getaddrinfo", fake)
    for thread in resolver_threads():  # one of an earlier test may be finishing: the counts below need it gone
        thread.join(5.0)
    assert resolver_threads() == [], "a resolver thread of an earlier test is still running"
    try:
        yield fake
    finally:
        # The hung look-ups answer and their threads end, freeing the places for the next test.
        fake.release.set()
        for thread in resolver_threads():
            thread.join(5.0)
        assert resolver_threads() == []


def hang_other_hosts(dns: HangingDns, count: int) -> None:
    """Leave ``count`` look-ups of different names hanging, each holding a resolver thread."""
    for n in range(count):
        name = f"hung{n}.example.test"
        dns.hanging.add(name)
        with pytest.raises(TimeoutError):
            resolve_host(name, 443, timeout=0.01)
    dns.wait_until_hung(count)


# --------------------------------------------------------------------------------------------------
# The resolver: one thread per host, the cap over all hosts


def test_many_look_ups_of_a_hanging_host_hold_one_thread_and_other_hosts_still_resolve(dns: HangingDns) -> None:
    dns.answers[DEAD] = "192.0.2.66"
    dns.hanging.add(DEAD)
    dns.answers[HEALTHY] = "192.0.2.10"

    # Twenty events queued for one dead endpoint, tried one after another as the sweeper does.
    for _ in range(20):
        with pytest.raises(TimeoutError) as caught:
            resolve_host(DEAD, 443, timeout=0.02)
        assert not isinstance(caught.value, ResolverBusy)
        assert str(caught.value) == f"no answer from DNS for {DEAD} in time"
    dns.wait_until_hung(1)

    assert dns.calls == [DEAD]  # asked once: the later callers waited for the same look-up
    assert len(resolver_threads()) == 1
    assert resolve_host(HEALTHY, 443, timeout=1.0) == [ipaddress.ip_address("192.0.2.10")]

    dns.release.set()
    # Once the hung look-up is over it is forgotten: the next caller asks DNS again and gets the answer.
    for thread in resolver_threads():
        thread.join(5.0)
    assert resolve_host(DEAD, 443, timeout=1.0) == [ipaddress.ip_address("192.0.2.66")]
    assert dns.calls == [DEAD, HEALTHY, DEAD]


def test_concurrent_look_ups_of_one_host_share_one_thread(dns: HangingDns) -> None:
    dns.answers[DEAD] = "192.0.2.66"
    dns.hanging.add(DEAD)
    callers = 3 * RESOLVER_THREADS
    start = threading.Barrier(callers)
    failures: list[BaseException] = []

    def look_up() -> None:
        start.wait(5.0)
        try:
            resolve_host(DEAD, 443, timeout=0.3)
        except BaseException as exc:  # noqa: BLE001 - collected for the assertions below
            failures.append(exc)

    threads = [threading.Thread(target=look_up, name="caller") for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5.0)

    # Every caller waited for the one look-up until its own time ran out; none was turned away as busy.
    assert [str(exc) for exc in failures] == [f"no answer from DNS for {DEAD} in time"] * callers
    assert not any(isinstance(exc, ResolverBusy) for exc in failures)
    assert dns.calls == [DEAD] and dns.most_hung == {DEAD: 1}
    assert len(resolver_threads()) == 1


def test_the_cap_still_holds_across_hosts(dns: HangingDns) -> None:
    hang_other_hosts(dns, RESOLVER_THREADS)
    dns.answers[HEALTHY] = "192.0.2.10"

    with pytest.raises(ResolverBusy) as caught:
        resolve_host(HEALTHY, 443, timeout=0.05)
    assert str(caught.value) == \
        f"{HEALTHY} was not looked up: all {RESOLVER_THREADS} resolver threads are waiting for DNS"
    assert isinstance(caught.value, TimeoutError)  # callers catching TimeoutError/OSError are unaffected
    # A host already being looked up needs no new place: its callers wait for the answer, not for a thread.
    with pytest.raises(TimeoutError) as joined:
        resolve_host("hung0.example.test", 443, timeout=0.05)
    assert not isinstance(joined.value, ResolverBusy)
    assert len(resolver_threads()) == RESOLVER_THREADS
    assert HEALTHY not in dns.calls

    dns.release.set()
    # Waiting for a free place within its own time limit, the look-up goes through once one frees.
    assert resolve_host(HEALTHY, 443, timeout=5.0) == [ipaddress.ip_address("192.0.2.10")]


# --------------------------------------------------------------------------------------------------
# post_webhook: what the sweeper sees


def test_a_healthy_webhook_is_delivered_while_another_hosts_dns_hangs(dns: HangingDns, receiver: Any) -> None:
    dns.answers[DEAD] = "127.0.0.1"
    dns.hanging.add(DEAD)
    dns.answers[HEALTHY] = "127.0.0.1"

    for n in range(20):
        dead = post_webhook(f"http://{DEAD}:{receiver.port}/hook", SECRET, f"evt-{n}", "task.assigned", {"n": n},
                            now=NOW, timeout=0.02, allow_private=True)
        # The dead host's own DNS failed: a real attempt, counted against its messages.
        assert not dead.ok and not dead.permanent and dead.attempted, dead
        assert dead.detail == f"timed out after 0.02 s: no answer from DNS for {DEAD} in time"

    healthy = post_webhook(f"http://{HEALTHY}:{receiver.port}/hook", SECRET, "evt-ok", "task.assigned", {},
                           now=NOW, timeout=2.0, allow_private=True)

    assert healthy.ok and healthy.attempted, healthy
    assert len(receiver.requests) == 1
    assert dns.calls == [DEAD, HEALTHY]  # twenty deliveries to the dead host, one look-up


def test_no_free_resolver_thread_is_reported_as_not_attempted(dns: HangingDns, receiver: Any) -> None:
    hang_other_hosts(dns, RESOLVER_THREADS)
    dns.answers[HEALTHY] = "127.0.0.1"

    result = post_webhook(f"http://{HEALTHY}:{receiver.port}/hook", SECRET, "evt-1", "task.assigned", {},
                          now=NOW, timeout=0.05, allow_private=True)

    assert not result.attempted and not result.ok and not result.permanent and result.status is None, result
    assert "resolver threads are waiting for DNS" in result.detail
    assert receiver.requests == [] and HEALTHY not in dns.calls


def test_a_result_that_was_not_attempted_is_neither_ok_nor_permanent() -> None:
    with pytest.raises(ValueError):
        DeliveryResult(ok=True, permanent=False, detail="x", attempted=False)
    with pytest.raises(ValueError):
        DeliveryResult(ok=False, permanent=True, detail="x", attempted=False)
    assert DeliveryResult(ok=False, permanent=False, detail="x").attempted  # attempted unless said otherwise


# --------------------------------------------------------------------------------------------------
# The sweeper: a busy resolver is no attempt


@pytest.fixture
def hook_message(services: Any, app: Any, receiver: Any, dns: HangingDns) -> Callable[[], OutboxMessage]:
    """One pending webhook message to ``HEALTHY`` (resolving to the receiver), on its last attempt."""
    app.extensions["processdesk"].runtime.config.update({"WEBHOOK_ALLOW_PRIVATE_NETWORKS": True})
    dns.answers[HEALTHY] = "127.0.0.1"
    ada = services.users.create_user("ada", "password-1234", roles=["admin"], groups=[], email="ada@example.test")
    services.notifications.add_webhook(ada, f"http://{HEALTHY}:{receiver.port}/hook", SECRET, ["*"])
    assert services.notifications.publish("task.assigned", {"subject": "x"}) == 1
    services.session.commit()
    message = services.session.scalars(select(OutboxMessage)).one()
    message.attempts = MAX_ATTEMPTS - 1  # one more counted failure and it is dead
    services.session.commit()
    message_id = message.id

    def read() -> OutboxMessage:
        row = services.session.get(OutboxMessage, message_id, populate_existing=True)
        assert row is not None
        services.session.rollback()
        return row

    return read


def test_a_busy_resolver_defers_the_message_without_counting_an_attempt(
        services: Any, clock: Any, receiver: Any, dns: HangingDns, hook_message: Callable[[], OutboxMessage]) -> None:
    hang_other_hosts(dns, RESOLVER_THREADS)

    report = services.notifications.sweep("test")  # waits post_webhook's 5 s for a free thread, in vain

    assert (report.claimed, report.deferred, report.retried, report.dead, report.sent) == (1, 1, 0, 0, 0)
    message = hook_message()
    assert message.status == "pending" and message.attempts == MAX_ATTEMPTS - 1
    assert message.claimed_by is None and message.claimed_until is None
    assert message.last_error is not None and "resolver threads are waiting for DNS" in message.last_error
    delay = (message.next_attempt_at - clock.now()).total_seconds()
    assert 0.9 * NOT_ATTEMPTED_DELAY <= delay <= NOT_ATTEMPTED_DELAY
    assert logged_attempts(services) == 0  # nothing was attempted, so nothing in the delivery log
    assert receiver.requests == []
    # Not again in a hot loop: the message waits out its short delay.
    assert services.notifications.sweep("test").claimed == 0

    # DNS answers again, the threads free up; the next try is a real one, and is delivered.
    dns.release.set()
    for thread in resolver_threads():
        thread.join(5.0)
    clock.advance(timedelta(seconds=NOT_ATTEMPTED_DELAY))
    report = services.notifications.sweep("test")
    assert (report.claimed, report.sent) == (1, 1)
    message = hook_message()
    assert message.status == "sent" and message.attempts == MAX_ATTEMPTS
    assert logged_attempts(services) == 1 and len(receiver.requests) == 1


def test_a_real_failure_still_counts_and_the_last_one_is_dead(
        services: Any, receiver: Any, hook_message: Callable[[], OutboxMessage]) -> None:
    receiver.status = 503

    report = services.notifications.sweep("test")

    assert (report.claimed, report.dead, report.deferred) == (1, 1, 0)
    message = hook_message()
    assert message.status == "dead" and message.attempts == MAX_ATTEMPTS
    assert message.last_error is not None and message.last_error.startswith("HTTP 503")
    assert logged_attempts(services) == 1 and len(receiver.requests) == 1


def test_deferring_ends_after_max_deferrals_in_a_row(
        services: Any, clock: Any, receiver: Any, dns: HangingDns, hook_message: Callable[[], OutboxMessage]) -> None:
    services.notifications.webhook_timeout = 0.5  # each busy try waits this long for a thread
    message = hook_message()
    services.session.get(OutboxMessage, message.id).deferrals = MAX_DEFERRALS - 1
    services.session.commit()
    hang_other_hosts(dns, RESOLVER_THREADS)

    report = services.notifications.sweep("test")  # the last deferral still allowed
    assert (report.deferred, report.dead) == (1, 0)
    assert hook_message().deferrals == MAX_DEFERRALS and hook_message().attempts == MAX_ATTEMPTS - 1

    clock.advance(timedelta(seconds=NOT_ATTEMPTED_DELAY))
    report = services.notifications.sweep("test")  # one more: recorded as a failed attempt, its last
    assert (report.deferred, report.dead) == (0, 1)
    message = hook_message()
    assert message.status == "dead" and message.attempts == MAX_ATTEMPTS and message.deferrals == 0
    assert message.last_error is not None
    assert message.last_error.startswith(f"not attempted {MAX_DEFERRALS + 1} times in a row: ")
    assert logged_attempts(services) == 1 and receiver.requests == []


def test_a_real_attempt_starts_the_deferral_count_again(
        services: Any, clock: Any, receiver: Any, hook_message: Callable[[], OutboxMessage]) -> None:
    message = hook_message()
    row = services.session.get(OutboxMessage, message.id)
    row.deferrals, row.attempts = MAX_DEFERRALS - 1, 1
    services.session.commit()
    receiver.status = 503

    assert services.notifications.sweep("test").retried == 1

    message = hook_message()
    assert (message.deferrals, message.attempts, message.status) == (0, 2, "pending")


def test_after_a_busy_resolver_the_sweep_tries_no_more_webhooks(
        services: Any, clock: Any, receiver: Any, dns: HangingDns, hook_message: Callable[[], OutboxMessage]) -> None:
    services.notifications.webhook_timeout = 0.5
    other = "other.example.test"
    dns.answers[other] = "127.0.0.1"
    ada = services.users.get_by_username("ada")
    services.notifications.add_webhook(ada, f"http://{other}:{receiver.port}/hook", SECRET, ["*"])
    services.session.commit()
    first = hook_message()
    clock.advance(timedelta(seconds=1))  # the new messages fall due after the first: it is tried first
    assert services.notifications.publish("task.assigned", {"subject": "y"}) == 2
    services.session.commit()
    hang_other_hosts(dns, RESOLVER_THREADS)

    report = services.notifications.sweep("test")

    # one waited for a resolver thread in vain; the other two were given back without trying
    assert (report.claimed, report.deferred, report.released, report.sent) == (3, 1, 2, 0)
    rows = services.session.scalars(select(OutboxMessage).order_by(OutboxMessage.deferrals)).all()
    assert [(r.status, r.attempts, r.deferrals, r.claimed_by) for r in rows] == [
        ("pending", 0, 0, None), ("pending", 0, 0, None), ("pending", MAX_ATTEMPTS - 1, 1, None)]
    assert [r.last_error is None for r in rows] == [True, True, False]
    services.session.rollback()
    assert first.id == rows[2].id
    assert logged_attempts(services) == 0 and receiver.requests == []
