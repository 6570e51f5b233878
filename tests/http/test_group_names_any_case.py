"""Group names are one name in any letter case: the command line and the seed (``ensure_group``)
join the group that exists instead of making a second one, addresses such as
/api/v1/groups/servicedesk reach ServiceDesk, and the database refuses a second spelling."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app.models import AuditEvent, Group
from tests.http.helpers import assert_error


def groups_named(services, name):
    services.session.expire_all()
    return list(services.session.scalars(select(Group.name).where(func.lower(Group.name) == name.lower())))


def test_the_command_line_joins_the_group_in_any_case_and_keeps_its_spelling(app, services, users):
    runner = app.test_cli_runner()
    made = runner.invoke(args=["users", "create", "bob", "--password", "long-password-1", "--group", "servicedesk"])
    assert made.exit_code == 0, made.output
    assert groups_named(services, "servicedesk") == ["ServiceDesk"]
    assert services.users.get_by_username("bob").group_names == {"ServiceDesk"}
    created = [e.payload["group"] for e in services.session.scalars(
        select(AuditEvent).where(AuditEvent.event_type == "group_created"))]
    assert "servicedesk" not in created
    joined = services.session.scalars(select(AuditEvent).where(AuditEvent.event_type == "user_created")
                                      .order_by(AuditEvent.seq.desc())).first()
    assert joined.payload["groups"] == ["ServiceDesk"]  # the group joined, as it is spelled
    # --update naming the group in two spellings joins it once
    again = runner.invoke(args=["users", "create", "bob", "--update", "--group", "SERVICEDESK"])
    assert again.exit_code == 0, again.output
    assert services.users.get_by_username("bob").group_names == {"ServiceDesk"}


def test_ensure_group_finds_the_group_in_any_case(services, users):
    desk = services.users.ensure_group("ServiceDesk")
    assert services.users.ensure_group("  SERVICEDESK ") is desk and desk.name == "ServiceDesk"
    assert services.users.ensure_group("servicedesk").id == desk.id
    assert groups_named(services, "servicedesk") == ["ServiceDesk"]
    fresh = services.users.ensure_group("Payroll")
    assert fresh.name == "Payroll" and services.users.ensure_group("payroll").id == fresh.id


def test_a_group_address_in_any_case_reaches_the_group(client, auth, services, users):
    one = client.get("/api/v1/groups/servicedesk", headers=auth("aude"))
    assert one.status_code == 200, one.get_json()
    assert one.get_json()["name"] == "ServiceDesk" and [m["username"] for m in one.get_json()["members"]] == ["alex"]
    added = client.post("/api/v1/groups/SERVICEDESK/members", json={"username": "rita"}, headers=auth("ada"))
    assert added.status_code == 200 and added.get_json()["name"] == "ServiceDesk"
    changed = client.patch("/api/v1/groups/serviceDESK", json={"description": "First line"}, headers=auth("ada"))
    assert changed.get_json()["description"] == "First line"
    removed = client.delete("/api/v1/groups/servicedesk/members/RITA", headers=auth("ada"))
    assert [m["username"] for m in removed.get_json()["members"]] == ["alex"]
    audited = services.session.scalars(select(AuditEvent).where(AuditEvent.event_type == "group_member_added")
                                       .order_by(AuditEvent.seq.desc())).first()
    assert audited.payload == {"group": "ServiceDesk", "username": "rita"}
    assert_error(client.get("/api/v1/groups/servicedesk2", headers=auth("ada")), 404)
    # an admin naming a user's groups in another case gets the group as it is spelled
    made = client.post("/api/v1/users", headers=auth("ada"), json={
        "username": "nora", "password": "a-long-password", "groups": ["servicedesk", "ServiceDesk"]})
    assert made.status_code == 201, made.get_json()
    assert made.get_json()["groups"] == ["ServiceDesk"]
    body = assert_error(client.post("/api/v1/users", headers=auth("ada"), json={
        "username": "nina", "password": "a-long-password", "groups": ["servicedesk", "nosuch"]}), 422)
    assert "nosuch" in str(body["details"]["fields"]["groups"]) and "servicedesk" not in str(body["details"])


def test_a_second_spelling_cannot_be_stored_even_past_the_service(services, users):
    services.session.add(Group(name="SERVICEDESK"))
    with pytest.raises(IntegrityError):
        services.session.flush()
    services.session.rollback()


def test_group_lists_fold_case_as_the_database_does(services, users):
    """Review: names were matched by Python's lower(), which folds "É" while SQLite's (the index's)
    does not: there "Équipe" and "équipe" are two groups, and a user put in both kept only one."""
    from app.errors import Conflict

    ada = services.users.get_by_username("ada")
    services.users.create_group(ada, "Équipe")
    try:
        services.users.create_group(ada, "équipe")
    except Conflict:  # PostgreSQL folds it: one group, as the index says
        assert services.session.bind.dialect.name == "postgresql"
        return
    services.session.commit()
    services.users.update_user(ada, "rita", {"groups": ["Équipe", "équipe"]})
    services.session.commit()
    assert services.users.get_by_username("rita").group_names == {"Équipe", "équipe"}


def test_a_deactivated_user_joins_no_group(client, auth, services, users):
    """QA: a leaver could be added to a group, which then listed them among its members while its
    member count left them out."""
    assert client.post("/api/v1/users/rita/deactivate", headers=auth("ada")).status_code == 200
    refused = assert_error(client.post("/api/v1/groups/ServiceDesk/members", json={"username": "rita"},
                                       headers=auth("ada")), 422, "validation_failed")
    assert "reactivate" in refused["details"]["fields"]["username"][0]
    members = client.get("/api/v1/groups/ServiceDesk", headers=auth("ada")).get_json()["members"]
    assert [m["username"] for m in members] == ["alex"]


def test_nor_through_a_patch_of_their_groups(client, auth, services, users):
    """Review: PATCH /users/<name> {"groups": [...]} still put a deactivated user in a group."""
    assert client.post("/api/v1/users/rita/deactivate", headers=auth("ada")).status_code == 200
    before = client.get("/api/v1/users/rita", headers=auth("ada")).get_json()["groups"]
    refused = assert_error(client.patch("/api/v1/users/rita", json={"groups": [*before, "ServiceDesk"]},
                                        headers=auth("ada")), 422, "validation_failed")
    assert "reactivate" in refused["details"]["fields"]["groups"][0]
    # keeping or dropping groups is fine
    kept = client.patch("/api/v1/users/rita", json={"groups": before}, headers=auth("ada"))
    assert kept.status_code == 200, kept.get_json()
    members = client.get("/api/v1/groups/ServiceDesk", headers=auth("ada")).get_json()["members"]
    assert "rita" not in [m["username"] for m in members]
