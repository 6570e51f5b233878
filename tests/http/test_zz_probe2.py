from datetime import timedelta
from tests.http.test_e2e_change import raise_change, APPROVE, desk  # noqa

def test_probe(desk, services, clock):
    number, iid = raise_change(desk, "emergency", emergency_approval_window="PT1H")
    clock.advance(timedelta(hours=1, minutes=1))
    body = desk.complete(number, "ecab_approve", "emma", APPROVE, status=409)
    for e in desk.history(iid):
        print(e["type"], e["actor"], e["payload"] if e["type"] in ("timer_fired","access_denied","task_cancelled","notification_sent") else "")
    print(desk.instance(iid)["data"].get("managers_notified"))
    # resubmit emergency
    desk.complete(number, "revise", "rita", {"revision_decision": "resubmit"})
    print(desk.ready(number), desk.record(number)["status"])
    from app.models import ProcessInstance
    print(services.session.get(ProcessInstance, iid).next_timer_at, clock.now())
