"""Event-based gateways: wait for a message or a timer, whichever comes first.

SpiffWorkflow waits at the gateway itself, with one combined event definition; the scheduler's
due time (``next_timer_at``), the timer sweep (``fire_due_timers``), the deploy checks and
``SpecBundle.caught_messages`` must all see the timer and the message inside it.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from SpiffWorkflow.util.task import TaskState

from app.clock import FrozenClock
from app.engine import (
    DefinitionError,
    MessageNotExpected,
    ProcessEngine,
    ProcessLibrary,
    ScriptIdentity,
    SourceFile,
    event_gateway,
)
from tests.engine.test_compaction import roundtrip
from tools.bpmn_builder import Diagram, pretty

ACTOR = ScriptIdentity(current_user={"id": 1, "username": "u"}, initiator={"id": 1, "username": "u"})
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def waiting_loop(timer: str = '"PT1H"', second_timer: bool = False) -> bytes:
    """start -> merge -> look (counts) -> done? -> gateway -> (timer | message "news") -> merge."""
    d = Diagram("news_loop", "News loop")
    d.node("start", "start", col=0)
    d.node("init", "script", "Init", col=1, script="looks = 0\nheard = []\nstop = False")
    d.node("merge", "xor", col=2)
    d.node("look", "script", "Look", col=3, script="looks = looks + 1")
    d.node("done", "xor", col=4)
    d.node("wait", "event", col=5, row=1)
    d.node("later", "catch", "Look again later", col=6, row=1, timer=("timeDuration", timer))
    d.node("news", "catch", "News", col=6, row=2, message="news", message_variable="news_payload")
    d.node("note", "script", "Note", col=7, row=2, script="heard = heard + [news_payload]\nstop = news_payload.get('stop', False)")
    d.node("end", "end", col=8)
    d.chain("start", "init", "merge", "look", "done")
    d.flow("done", "end", condition="stop")
    d.flow("done", "wait", condition="not stop")
    d.flow("wait", "later")
    d.flow("wait", "news")
    d.flow("later", "merge")
    d.chain("news", "note", "merge")
    if second_timer:
        d.node("much_later", "catch", "Give up", col=6, row=3, timer=("timeDuration", '"P1D"'))
        d.flow("wait", "much_later")
        d.flow("much_later", "end")
    return pretty(d.to_xml()).encode()


def compile_one(diagram: bytes):
    [process] = ProcessLibrary().compile([SourceFile("news_loop.bpmn", diagram)])
    return process


def start(clock: FrozenClock):
    process = compile_one(waiting_loop())
    engine = ProcessEngine(script_time_limit=2.0, now=clock.now)
    bundle = engine.spec(process.content_hash, process.spec_json)
    return engine, engine.start(bundle, {}, ACTOR)


def test_the_gateway_s_timer_is_due_for_the_sweeper_and_fires_as_its_catch_event():
    clock = FrozenClock(T0)
    engine, run = start(clock)
    assert run.data["looks"] == 1
    assert run.next_timer_at() == T0 + timedelta(hours=1)  # not None: the sweeper must find it
    assert run.fire_due_timers() == []  # not due yet
    run = roundtrip(engine, run)
    clock.set(T0 + timedelta(hours=1, seconds=1))
    fired = run.fire_due_timers()
    assert [f["bpmn_id"] for f in fired] == ["later"]  # the timer event, not the gateway
    assert run.data["looks"] == 2 and run.status == "running"
    assert run.next_timer_at() == clock.now() + timedelta(hours=1)  # armed again, from now


def test_a_message_at_the_gateway_wins_over_its_timer_and_rearms_it():
    clock = FrozenClock(T0)
    engine, run = start(clock)
    clock.set(T0 + timedelta(minutes=20))
    run.send_message("news", {"status": "implementing"}, ACTOR)
    run = roundtrip(engine, run)
    assert run.data["heard"] == [{"status": "implementing"}] and run.data["looks"] == 2
    # the timer of the first wait is gone; the new wait counts from the message
    assert run.next_timer_at() == T0 + timedelta(minutes=80)
    clock.set(T0 + timedelta(hours=1, minutes=10))
    assert run.fire_due_timers() == []  # the old due time passed, but that timer was cancelled
    run.send_message("news", {"stop": True}, ACTOR)
    assert run.status == "completed" and run.next_timer_at() is None
    with pytest.raises(MessageNotExpected):
        run.send_message("news", {}, ACTOR)


def test_the_version_knows_which_messages_it_catches():
    process = compile_one(waiting_loop())
    bundle = ProcessEngine().spec(process.content_hash, process.spec_json)
    assert bundle.caught_messages == frozenset({"news"})


@pytest.mark.parametrize("timer, said", [
    ("__import__('os').getcwd()", "is refused"),  # scripts rules apply inside the gateway too
    ('"P20Y"', "10 years"),  # and the timer bounds
])
def test_deploy_checks_the_timer_behind_the_gateway(timer: str, said: str):
    with pytest.raises(DefinitionError) as caught:
        compile_one(waiting_loop(timer=timer))
    assert said in caught.value.message and caught.value.element_id == "wait"


def test_deploy_refuses_a_gateway_with_two_timers():
    with pytest.raises(DefinitionError) as caught:
        compile_one(waiting_loop(second_timer=True))
    assert "more than one timer" in caught.value.message and caught.value.element_id == "wait"


def test_a_message_caught_while_the_timer_is_overdue_takes_one_branch_only():
    """The sweep has not fired the past-due timer yet when the message comes: BPMN takes the
    first event (the timer, due earlier), once; SpiffWorkflow alone runs both branches."""
    clock = FrozenClock(T0)
    engine, run = start(clock)
    clock.set(T0 + timedelta(hours=3))  # the timer fell due two hours ago; nobody swept
    run.send_message("news", {"status": "late"}, ACTOR)
    assert run.data["looks"] == 2 and run.data["heard"] == []  # the timer's branch, one look
    waiting = [t for t in run._wf.get_tasks() if t.task_spec.bpmn_id == "wait" and t.state == TaskState.WAITING]
    assert len(waiting) == 1  # one token waits again

    event_gateway.uninstall()
    try:
        clock.set(T0)
        engine, run = start(clock)
        clock.set(T0 + timedelta(hours=3))
        run.send_message("news", {"status": "late"}, ACTOR)
        doubled = [t for t in run._wf.get_tasks() if t.task_spec.bpmn_id == "wait" and t.state == TaskState.WAITING]
        assert len(doubled) == 2  # what the fix prevents: both branches ran
    finally:
        event_gateway.install()


def test_deploy_refuses_an_event_after_the_gateway_with_two_definitions():
    """BPMN: each event after an event-based gateway catches one definition. SpiffWorkflow would
    nest a second combined definition, out of reach of every check above."""
    xml = waiting_loop().decode()
    message = '<bpmn:messageEventDefinition id="news_msg" messageRef="msg_news">'
    assert message in xml
    nested = xml.replace(message, '<bpmn:timerEventDefinition id="news_timer"><bpmn:timeDuration>"P20Y"'
                                  '</bpmn:timeDuration></bpmn:timerEventDefinition>' + message)
    with pytest.raises(DefinitionError) as caught:
        compile_one(nested.encode())
    assert "more than one event definition" in caught.value.message and caught.value.element_id == "wait"
