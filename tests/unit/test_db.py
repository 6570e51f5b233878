from __future__ import annotations

import json

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm.exc import StaleDataError

from app.db import count_capped, get_by_id, insert_row, set_reference, write_changes
from app.models import Group, HumanTask, User
from tests.conftest import sent_statements


def test_count_capped_counts_exactly_below_the_cap_and_stops_above(services):
    for i in range(7):
        services.users.ensure_group(f"group-{i}")
    query = select(Group).where(Group.name.like("group-%"))
    assert count_capped(services.session, query, cap=10) == (7, True)
    assert count_capped(services.session, query, cap=7) == (7, True)
    assert count_capped(services.session, query, cap=5) == (5, False)
    assert count_capped(services.session, query.order_by(Group.name.desc()), cap=3) == (3, False)


# -- the hot-path helpers: get_by_id and write_changes ----------------------------------------


def _verbs(session):
    """The first word of each statement sent on the session's engine while the block runs."""
    return sent_statements(session.connection().engine)


def _started(services, users):
    instance = services.instances.start_process(users["rita"], "simple_request", {"note": "first"})
    services.session.commit()
    return instance


def test_get_by_id_answers_from_the_identity_map_then_from_the_database(services, users):
    session = services.session
    rita = users["rita"]
    with _verbs(session) as sent:
        assert get_by_id(session, User, rita.id) is rita
    assert sent == []
    session.expunge_all()
    loaded = get_by_id(session, User, rita.id)
    assert loaded is not None and loaded.username == "rita" and loaded is not rita
    assert get_by_id(session, User, 987654) is None
    assert get_by_id(session, User, None) is None


def test_write_changes_writes_the_changed_columns_once_and_bumps_the_version(services, deployed, users):
    session = services.session
    instance = _started(services, users)
    version = instance.lock_version
    instance.data = {"note": "second"}
    instance.status = "running"
    with _verbs(session) as sent:
        assert write_changes(session, instance) is True
        session.flush()  # nothing left for the unit of work
    assert [q.split()[0] for q in sent] == ["UPDATE"]
    assert instance not in session.dirty
    assert instance.lock_version == version + 1
    row = session.execute(text("SELECT data, lock_version FROM process_instance WHERE id = :id"), {"id": instance.id}).one()
    assert row.lock_version == version + 1
    assert (row.data if isinstance(row.data, dict) else json.loads(row.data)) == {"note": "second"}
    with _verbs(session) as sent:
        assert write_changes(session, instance) is True  # unchanged: nothing to write
    assert sent == []


def test_write_changes_loses_a_race_like_a_flush_would(services, deployed, users):
    session = services.session
    instance = _started(services, users)
    # Another transaction moved the row on since this session read it.
    session.execute(text("UPDATE process_instance SET lock_version = lock_version + 1 WHERE id = :id"), {"id": instance.id})
    instance.data = {"note": "late"}
    with pytest.raises(StaleDataError):
        write_changes(session, instance)


def test_write_changes_leaves_relationships_and_new_rows_to_the_unit_of_work(services, deployed, users):
    session = services.session
    instance = _started(services, users)
    instance.started_by = users["alex"]
    assert write_changes(session, instance) is False
    session.flush()
    assert instance.started_by_id == users["alex"].id
    group = Group(name="not-yet-stored")
    session.add(group)
    assert write_changes(session, group) is False


def test_known_access_names_give_way_to_loaded_collections(services, users):
    alex = users["alex"]
    services.session.expunge_all()
    fresh = get_by_id(services.session, User, alex.id)
    fresh.know_access(["approver"], ["Elsewhere"])  # what the token check read
    assert fresh.roles == {"approver"} and fresh.group_names == {"Elsewhere"}
    services.session.refresh(fresh, ["role_rows", "groups"])  # the collections themselves are loaded
    assert fresh.roles == {"agent"} and fresh.group_names == {"ServiceDesk"}


def test_set_reference_writes_the_foreign_key_without_a_flush(services, deployed, users):
    session = services.session
    instance = _started(services, users)
    task = session.scalars(select(HumanTask).where(HumanTask.instance_id == instance.id)).first()
    alex = users["alex"]
    set_reference(task, "claimed_by", alex)
    assert task.claimed_by is alex and task.claimed_by_id == alex.id
    with _verbs(session) as sent:
        assert write_changes(session, task) is True
        session.flush()
    assert [q.split()[0] for q in sent] == ["UPDATE"]
    assert session.execute(text("SELECT claimed_by_id FROM human_task WHERE id = :id"), {"id": task.id}).scalar() == alex.id
    set_reference(task, "claimed_by", None)
    assert write_changes(session, task) is True
    assert session.execute(text("SELECT claimed_by_id FROM human_task WHERE id = :id"), {"id": task.id}).scalar() is None
    assert task.claimed_by is None


def test_write_changes_skips_a_column_set_to_its_own_value(services, deployed, users):
    session = services.session
    instance = _started(services, users)
    version = instance.lock_version
    instance.status = instance.status  # the same value: nothing to write, nothing to overwrite
    with _verbs(session) as sent:
        assert write_changes(session, instance) is True
        session.flush()
    assert sent == [] and instance.lock_version == version and instance not in session.dirty


def test_set_reference_to_a_row_not_stored_yet_leaves_it_to_the_flush(services, users):
    session = services.session
    group = session.scalars(select(Group).where(Group.name == "ServiceDesk")).one()
    newcomer = User(username="newcomer", display_name="Newcomer", password_hash="x")
    session.add(newcomer)
    set_reference(group, "manager", newcomer)
    assert write_changes(session, group) is False  # a relationship change: the flush's job
    session.flush()
    assert group.manager_id == newcomer.id is not None


def test_insert_row_returns_a_persistent_row_with_its_references(services, users):
    session = services.session
    rita = users["rita"]
    with _verbs(session) as sent:
        group = insert_row(session, Group, {"name": "Night shift", "description": "", "manager_id": rita.id},
                           manager=rita)
        assert group.manager is rita  # told, not loaded
        session.flush()  # nothing left for the unit of work
    assert [q.split()[0] for q in sent] == ["INSERT"]
    assert group.id is not None and group in session and group not in session.new
    assert session.scalars(select(Group).where(Group.id == group.id)).one() is group


def test_known_access_names_give_way_to_a_queued_membership(services, users):
    session = services.session
    alex = users["alex"]
    session.expunge_all()
    fresh = get_by_id(session, User, alex.id)
    fresh.know_access(["agent"], ["ServiceDesk"])
    night = Group(name="Night shift", description="")
    session.add(night)
    night.members.append(fresh)  # queued on fresh.groups, which is not loaded
    assert "groups" not in fresh.__dict__
    assert fresh.group_names == {"ServiceDesk", "Night shift"}


def test_rows_inserted_with_returning_leave_the_session_on_rollback(services, users):
    session = services.session
    session.commit()
    group = insert_row(session, Group, {"name": "Rolled back", "description": "", "manager_id": None})
    kept = session.scalars(select(Group).where(Group.name == "ServiceDesk")).one()
    session.rollback()
    assert group not in session and kept in session
    assert session.scalars(select(Group).where(Group.name == "Rolled back")).first() is None
