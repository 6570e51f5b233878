"""A process without a record started for somebody else (``InstanceService.start_process``'s
``on_behalf_of``): they are its starter, its tasks outside any lane are theirs, and they are told
which process was started for them and by whom."""

from __future__ import annotations

from sqlalchemy import select

from app.models import Notification


def test_the_person_it_is_started_for_is_its_starter_and_is_told(services, deployed, users):
    instance = services.instances.start_process(users["alex"], "simple_request", {}, on_behalf_of="rita")
    services.session.commit()
    assert instance.started_by_id == users["rita"].id
    # the first task, outside any lane, is in the starter's queue: hers, not alex's
    rita_tasks, _total = services.tasks.list_tasks(users["rita"], mine=False, process_id="simple_request",
                                                       page=1, per_page=10)
    alex_tasks, _total = services.tasks.list_tasks(users["alex"], mine=False, process_id="simple_request",
                                                       page=1, per_page=10)
    assert [t.bpmn_id for t in rita_tasks] == ["fill_details"] and alex_tasks == []
    told = services.session.scalars(select(Notification).where(Notification.user_id == users["rita"].id)).all()
    said = [(n.subject, n.body, n.ticket_id) for n in told]
    assert ("alex started Simple request for you", "alex started Simple request for you.", None) in said
    assert any(subject.startswith("New task: Fill in details") for subject, _body, _ticket in said)  # hers to do
