"""User administration through the API: admins manage users and groups, auditors read, others are
refused (and the refusal audited); usernames ignore letter case; deactivation ends a leaver's
access and hands their claimed tasks back to the queue."""

from __future__ import annotations

from sqlalchemy import select

from app.models import AuditEvent, HumanTask, User, WebSession
from tests.conftest import TEST_PASSWORD
from tests.http.helpers import assert_error, deploy_all, open_task, start


def events(services, kind):
    return [e.payload for e in services.session.scalars(
        select(AuditEvent).where(AuditEvent.event_type == kind).order_by(AuditEvent.seq))]


def sign_in(client, username, password=TEST_PASSWORD):
    return client.post("/api/v1/auth/token", json={"username": username, "password": password})


NEW = {"username": "nora", "password": "a-long-password", "display_name": "Nora New", "email": "nora@example.test",
       "roles": ["agent"], "groups": ["ServiceDesk"], "manager": "ada"}


def test_an_admin_creates_reads_and_searches_users(client, auth, services):
    made = client.post("/api/v1/users", json=NEW, headers=auth("ada"))
    assert made.status_code == 201, made.get_json()
    body = made.get_json()
    assert body["username"] == "nora" and body["roles"] == ["agent"] and body["groups"] == ["ServiceDesk"]
    assert body["manager"] == "ada" and body["active"] is True and body["email"] == "nora@example.test"
    assert not {"password", "password_hash"} & set(body)
    assert sign_in(client, "nora", "a-long-password").status_code == 200

    one = client.get("/api/v1/users/NORA", headers=auth("aude"))  # auditors read, in any case
    assert one.status_code == 200 and one.get_json()["display_name"] == "Nora New"
    assert "password_hash" not in str(one.get_json())

    found = client.get("/api/v1/users?q=new&role=agent&active=true", headers=auth("ada")).get_json()
    assert [u["username"] for u in found["items"]] == ["nora"] and found["total"] == 1
    in_group = client.get("/api/v1/users?group=ServiceDesk", headers=auth("ada")).get_json()
    assert [u["username"] for u in in_group["items"]] == ["alex", "nora"]
    paged = client.get("/api/v1/users?per_page=2&page=2", headers=auth("ada")).get_json()
    assert paged["total"] == 9 and [u["username"] for u in paged["items"]] == ["alex", "amy"]
    literal = client.get("/api/v1/users?q=%25", headers=auth("ada")).get_json()
    assert literal["total"] == 0  # LIKE wildcards match only themselves
    assert events(services, "user_created")[-1]["username"] == "nora"


def test_non_admins_are_refused_with_403_and_the_refusal_is_audited(client, auth, services):
    for who in ("rita", "alex", "olga"):
        assert_error(client.get("/api/v1/users", headers=auth(who)), 403, "forbidden")
        assert_error(client.get("/api/v1/groups", headers=auth(who)), 403, "forbidden")
    for who in ("alex", "aude"):  # an auditor reads but changes nothing
        assert_error(client.post("/api/v1/users", json=NEW, headers=auth(who)), 403)
        assert_error(client.patch("/api/v1/users/rita", json={"display_name": "X"}, headers=auth(who)), 403)
        assert_error(client.post("/api/v1/users/rita/deactivate", headers=auth(who)), 403)
        assert_error(client.post("/api/v1/users/rita/password", json={"password": "x" * 12}, headers=auth(who)), 403)
        assert_error(client.post("/api/v1/groups", json={"name": "G"}, headers=auth(who)), 403)
        assert_error(client.post("/api/v1/groups/Other/members", json={"username": "rita"}, headers=auth(who)), 403)
    refused = events(services, "access_denied")
    assert {"action": "create_user", "reason": "admin only"} in [
        {k: p[k] for k in ("action", "reason")} for p in refused]
    assert any(p["action"] == "list_users" for p in refused)
    assert services.users.find("nora") is None
    assert services.users.find("rita").active is True
    assert_error(client.get("/api/v1/users"), 401)


def test_taken_names_are_refused_with_409_in_any_letter_case(client, auth, services):
    for name in ("alex", "ALEX", "Alex"):
        body = assert_error(client.post("/api/v1/users", json={**NEW, "username": name}, headers=auth("ada")),
                            409, "user_exists")
        assert body["details"]["fields"] == {"username": ["is taken"]} and body["details"]["existing"] == "alex"
    alex = services.users.get_by_username("alex")
    assert alex.roles == {"agent"}  # nothing about the existing user changed
    assert alex.password_hash.startswith("pbkdf2") and sign_in(client, "alex").status_code == 200
    assert_error(client.post("/api/v1/groups", json={"name": "servicedesk"}, headers=auth("ada")), 409, "group_exists")


def test_bad_fields_are_named_in_the_422(client, auth):
    body = assert_error(client.post("/api/v1/users", json={"username": "has space", "password": "short",
                                                           "roles": ["wizard"]}, headers=auth("ada")), 422)
    assert {"password", "roles"} <= set(body["details"]["fields"])
    body = assert_error(client.post("/api/v1/users", json={**NEW, "username": "has space"}, headers=auth("ada")), 422)
    assert set(body["details"]["fields"]) == {"username"}
    body = assert_error(client.post("/api/v1/users", json={**NEW, "groups": ["NoSuchGroup"]}, headers=auth("ada")), 422)
    assert "NoSuchGroup" in str(body["details"]["fields"]["groups"])
    body = assert_error(client.post("/api/v1/users", json={**NEW, "manager": "ghost"}, headers=auth("ada")), 422)
    assert set(body["details"]["fields"]) == {"manager"}
    body = assert_error(client.post("/api/v1/users", json={**NEW, "email": "not-an-address"}, headers=auth("ada")), 422)
    assert set(body["details"]["fields"]) == {"email"}
    body = assert_error(client.patch("/api/v1/users/rita", json={"colour": "red"}, headers=auth("ada")), 422)
    assert "colour" in body["details"]["fields"]
    body = assert_error(client.patch("/api/v1/users/rita", json={"manager": "rita"}, headers=auth("ada")), 422)
    assert set(body["details"]["fields"]) == {"manager"}
    body = assert_error(client.post("/api/v1/users/rita/password", json={"password": "short"}, headers=auth("ada")), 422)
    assert "password" in body["details"]["fields"]
    body = assert_error(client.post("/api/v1/groups", json={"name": "a/b"}, headers=auth("ada")), 422)
    assert set(body["details"]["fields"]) == {"name"}
    assert_error(client.get("/api/v1/users/ghost", headers=auth("ada")), 404)


def test_an_update_changes_what_it_names_and_audits_before_and_after(client, auth, services):
    services.users.set_locale(services.users.get_by_username("rita"), "zh_CN")
    services.session.commit()
    changed = client.patch("/api/v1/users/RITA", headers=auth("ada"), json={
        "display_name": "Rita R.", "roles": ["requester", "approver"], "groups": ["Approvers"], "manager": "amy"})
    assert changed.status_code == 200, changed.get_json()
    body = changed.get_json()
    assert body["roles"] == ["approver", "requester"] and body["groups"] == ["Approvers"]
    assert body["manager"] == "amy" and body["locale"] == "zh_CN" and body["email"] is None
    assert sign_in(client, "rita").status_code == 200  # the password stays
    update = events(services, "user_updated")[-1]
    assert update["username"] == "rita"
    assert update["changes"]["roles"] == {"before": ["requester"], "after": ["approver", "requester"]}
    assert update["changes"]["display_name"] == {"before": "rita", "after": "Rita R."}
    cleared = client.patch("/api/v1/users/rita", json={"manager": None}, headers=auth("ada")).get_json()
    assert cleared["manager"] is None and cleared["roles"] == ["approver", "requester"]


def test_usernames_ignore_case_at_sign_in_and_for_tokens(client, auth, services):
    token = sign_in(client, "ALEX")
    assert token.status_code == 200
    headers = {"Authorization": f"Bearer {token.get_json()['token']}"}
    assert client.get("/api/v1/tasks", headers=headers).status_code == 200
    assert services.users.check_password("Alex", TEST_PASSWORD).username == "alex"
    assert_error(sign_in(client, "ALEX", "wrong-password"), 401)


def test_deactivation_revokes_tokens_ends_sessions_and_releases_claims(client, auth, services):
    deploy_all(client, auth("olga"))
    instance = start(client, auth("rita"), "lane_ticket", {"title": "printer jam"})
    triage = open_task(instance, "triage")
    alex = auth("alex")
    assert client.post(f"/api/v1/tasks/{triage['id']}/claim", headers=alex).get_json()["claimed_by"] == "alex"
    services.users.start_web_session(services.users.get_by_username("alex"), forget_after_seconds=3600)
    services.session.commit()

    done = client.post("/api/v1/users/Alex/deactivate", headers=auth("ada"))
    assert done.status_code == 200, done.get_json()
    assert done.get_json()["active"] is False and done.get_json()["released_tasks"] == [triage["id"]]

    assert_error(client.get("/api/v1/tasks", headers=alex), 401)  # the token issued before is dead
    assert_error(sign_in(client, "alex"), 401)
    task = services.session.get(HumanTask, triage["id"])
    services.session.refresh(task)
    assert task.claimed_by_id is None
    released = events(services, "task_unclaimed")[-1]
    assert released["previous_claimant"] == "alex" and released["reason"] == "user_deactivated"
    session_row = services.session.scalars(select(WebSession)).one()
    services.session.refresh(session_row)
    assert session_row.end_reason == "deactivated" and session_row.ended_at is not None
    assert events(services, "user_deactivated")[-1] == {"username": "alex", "released_tasks": [triage["id"]]}
    # another ServiceDesk member may now claim it
    services.users.create_user("sam", "password-1234", roles=["agent"], groups=["ServiceDesk"])
    services.session.commit()
    sam = {"Authorization": f"Bearer {sign_in(client, 'sam', 'password-1234').get_json()['token']}"}
    assert client.post(f"/api/v1/tasks/{triage['id']}/claim", headers=sam).get_json()["claimed_by"] == "sam"

    listed = client.get("/api/v1/users?active=false", headers=auth("ada")).get_json()
    assert [u["username"] for u in listed["items"]] == ["alex"]
    back = client.post("/api/v1/users/alex/reactivate", headers=auth("ada"))
    assert back.status_code == 200 and back.get_json()["active"] is True
    assert sign_in(client, "alex").status_code == 200
    assert_error(client.get("/api/v1/tasks", headers=alex), 401)  # old tokens stay revoked
    assert events(services, "user_reactivated")[-1] == {"username": "alex"}


def test_the_last_admin_and_ones_own_account_are_protected(client, auth, services):
    body = assert_error(client.post("/api/v1/users/ada/deactivate", headers=auth("ada")), 409, "own_account")
    assert "your own account" in body["message"]
    body = assert_error(client.patch("/api/v1/users/ada", json={"roles": ["agent"]}, headers=auth("ada")), 409, "last_admin")
    assert "no active administrator" in body["message"]
    body = assert_error(client.patch("/api/v1/users/ada", json={"active": False}, headers=auth("ada")), 409)
    assert services.users.get_by_username("ada").roles == {"admin"}
    # with a second admin, the first may step down, but the second is then the last
    client.patch("/api/v1/users/olga", json={"roles": ["process_owner", "admin"]}, headers=auth("ada"))
    assert client.patch("/api/v1/users/ada", json={"roles": ["auditor"]}, headers=auth("ada")).status_code == 200
    olga = {"Authorization": f"Bearer {sign_in(client, 'olga').get_json()['token']}"}
    body = assert_error(client.patch("/api/v1/users/olga", json={"roles": [], "active": False}, headers=olga), 409)
    assert services.users.get_by_username("olga").active is True
    # the CLI (no actor) is held to the last-admin rule as well
    from app.errors import Conflict

    services.session.expire_all()  # the test's session read olga before the requests changed her
    try:
        services.users.deactivate_user(None, "olga")
    except Conflict as err:
        assert err.details == {"username": "olga"} and "no active administrator" in err.message
    else:
        raise AssertionError("the last admin was deactivated")


def test_an_admin_resets_a_password(client, auth, services):
    rita = auth("rita")
    done = client.post("/api/v1/users/rita/password", json={"password": "brand-new-pass"}, headers=auth("ada"))
    assert done.status_code == 200 and "password" not in done.get_json()
    assert_error(client.get("/api/v1/tasks", headers=rita), 401)
    assert_error(sign_in(client, "rita"), 401)
    assert sign_in(client, "rita", "brand-new-pass").status_code == 200
    assert events(services, "user_password_reset") == [{"username": "rita"}]
    assert "brand-new-pass" not in str(events(services, "user_password_reset"))


def test_groups_are_created_changed_and_their_members_managed(client, auth, services):
    made = client.post("/api/v1/groups", json={"name": "Payroll", "description": "Pay questions", "manager": "amy"},
                       headers=auth("ada"))
    assert made.status_code == 201, made.get_json()
    assert made.get_json() == {**made.get_json(), "name": "Payroll", "manager": "amy", "members": [], "member_count": 0}
    added = client.post("/api/v1/groups/Payroll/members", json={"username": "RICK"}, headers=auth("ada")).get_json()
    assert [m["username"] for m in added["members"]] == ["rick"] and added["member_count"] == 1
    again = client.post("/api/v1/groups/Payroll/members", json={"username": "rick"}, headers=auth("ada"))
    assert again.status_code == 200 and len(again.get_json()["members"]) == 1
    services.session.expire_all()
    assert "Payroll" in services.users.get_by_username("rick").group_names
    body = assert_error(client.post("/api/v1/groups/Payroll/members", json={"username": "ghost"}, headers=auth("ada")),
                        422)
    assert set(body["details"]["fields"]) == {"username"}
    changed = client.patch("/api/v1/groups/Payroll", json={"description": "Salaries", "manager": None},
                           headers=auth("ada")).get_json()
    assert changed["description"] == "Salaries" and changed["manager"] is None
    listed = client.get("/api/v1/groups", headers=auth("aude")).get_json()["items"]
    assert {"name": "Payroll", "member_count": 1} in [{k: g[k] for k in ("name", "member_count")} for g in listed]
    assert client.get("/api/v1/groups/Payroll", headers=auth("aude")).status_code == 200
    removed = client.delete("/api/v1/groups/Payroll/members/rick", headers=auth("ada")).get_json()
    assert removed["members"] == []
    assert_error(client.get("/api/v1/groups/Nope", headers=auth("ada")), 404)
    kinds = [e.event_type for e in services.session.scalars(
        select(AuditEvent).where(AuditEvent.event_type.like("group_%"), AuditEvent.actor == "ada")
        .order_by(AuditEvent.seq))]  # the fixtures' groups are the command line's
    assert kinds == ["group_created", "group_member_added", "group_updated", "group_member_removed"]
    assert events(services, "group_updated")[-1]["changes"] == {
        "description": {"before": "Pay questions", "after": "Salaries"}, "manager": {"before": "amy", "after": None}}


def test_the_openapi_document_never_offers_a_password_hash(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    assert "/api/v1/users/{username}/deactivate" in spec["paths"]
    assert "password_hash" not in str(spec)
    assert "password" not in spec["components"]["schemas"]["UserOut"]["properties"]


def test_a_name_differing_only_in_case_cannot_be_stored_even_past_the_service(services, users):
    from sqlalchemy.exc import IntegrityError

    services.session.add(User(username="RITA", display_name="x", password_hash="x", active=True, token_generation=0))
    try:
        services.session.flush()
    except IntegrityError:
        services.session.rollback()
    else:
        raise AssertionError("the unique index on lower(username) let RITA in beside rita")
