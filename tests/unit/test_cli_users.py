"""`flask users create` refuses an existing user unless --update (which keeps what it does not name);
`flask users deactivate` / `activate`; `flask demo seed` twice changes nothing the second time."""

from __future__ import annotations

from sqlalchemy import func, select

from app.models import AuditEvent, User


def user(services, name):
    services.session.expire_all()
    return services.session.scalar(select(User).where(User.username == name))


def test_create_refuses_an_existing_user_in_any_case_and_changes_nothing(app, services):
    runner = app.test_cli_runner()
    made = runner.invoke(args=["users", "create", "carol", "--password", "long-password-1", "--role", "agent",
                               "--group", "ServiceDesk"])
    assert made.exit_code == 0 and "user carol created" in made.output
    before = user(services, "carol").password_hash
    again = runner.invoke(args=["users", "create", "Carol", "--password", "other-password-2", "--role", "admin"])
    assert again.exit_code == 1
    assert "user carol exists already" in again.output and "--update" in again.output
    carol = user(services, "carol")
    assert carol.password_hash == before and carol.roles == {"agent"} and carol.group_names == {"ServiceDesk"}
    assert services.session.scalar(select(func.count()).select_from(User)) == 1


def test_update_adds_and_removes_what_it_names_and_keeps_the_rest(app, services):
    runner = app.test_cli_runner()
    runner.invoke(args=["users", "create", "carol", "--password", "long-password-1", "--role", "agent",
                        "--group", "ServiceDesk", "--group", "CAB"])
    before = user(services, "carol")
    hash_before, generation = before.password_hash, before.token_generation
    updated = runner.invoke(args=["users", "create", "CAROL", "--update", "--role", "approver", "--group", "Finance",
                                  "--remove-group", "CAB", "--name", "Carol C"])
    assert updated.exit_code == 0, updated.output
    assert "user carol updated" in updated.output
    carol = user(services, "carol")
    assert carol.roles == {"agent", "approver"} and carol.group_names == {"ServiceDesk", "Finance"}
    assert carol.display_name == "Carol C"
    made = services.session.scalars(select(AuditEvent).where(AuditEvent.event_type == "group_created")).all()
    assert {(e.actor, e.payload["group"]) for e in made} >= {("cli", "Finance")}  # a group the CLI made is on record
    assert carol.password_hash == hash_before and carol.token_generation == generation  # no --password: kept
    with_password = runner.invoke(args=["users", "create", "carol", "--update", "--password", "new-password-3",
                                        "--remove-role", "agent"])
    assert with_password.exit_code == 0, with_password.output
    carol = user(services, "carol")
    assert carol.roles == {"approver"} and carol.password_hash != hash_before and carol.token_generation == generation + 1
    assert runner.invoke(args=["users", "create", "carol", "--remove-role", "agent"]).exit_code != 0  # needs --update
    new = runner.invoke(args=["users", "create", "dora", "--update", "--password", "long-password-1"])
    assert new.exit_code == 0 and "user dora created" in new.output  # --update also creates


def test_deactivate_and_activate(app, services):
    runner = app.test_cli_runner()
    runner.invoke(args=["users", "create", "boss", "--password", "long-password-1", "--role", "admin"])
    runner.invoke(args=["users", "create", "carol", "--password", "long-password-1", "--role", "agent"])
    done = runner.invoke(args=["users", "deactivate", "Carol"])
    assert done.exit_code == 0 and "user carol deactivated" in done.output
    assert user(services, "carol").active is False
    assert "inactive already" in runner.invoke(args=["users", "deactivate", "carol"]).output
    last = runner.invoke(args=["users", "deactivate", "boss"])
    assert last.exit_code == 1 and "no active administrator" in last.output
    assert user(services, "boss").active is True
    back = runner.invoke(args=["users", "activate", "carol"])
    assert back.exit_code == 0 and user(services, "carol").active is True
    missing = runner.invoke(args=["users", "deactivate", "nobody"])
    assert missing.exit_code == 1 and "no user nobody" in missing.output
    kinds = list(services.session.scalars(select(AuditEvent.event_type).where(
        AuditEvent.event_type.in_(["user_deactivated", "user_reactivated"])).order_by(AuditEvent.seq)))
    assert kinds == ["user_deactivated", "user_reactivated"]


def test_demo_seed_twice_leaves_the_existing_users_as_they_are(app, services):
    app.config["DEMO_MODE"] = True
    runner = app.test_cli_runner()
    first = runner.invoke(args=["demo", "seed", "--no-records"])
    assert first.exit_code == 0, first.output
    rita = user(services, "rita")
    hash_before, generation = rita.password_hash, rita.token_generation
    assert rita.manager is not None and rita.manager.username == "mona"
    events = services.session.scalar(select(func.count()).select_from(AuditEvent))
    second = runner.invoke(args=["demo", "seed", "--no-records"])
    assert second.exit_code == 0, second.output
    rita = user(services, "rita")
    assert rita.password_hash == hash_before and rita.token_generation == generation
    assert services.session.scalar(select(func.count()).select_from(AuditEvent)) == events  # nothing changed


def test_update_names_groups_in_any_letter_case(app, services):
    runner = app.test_cli_runner()
    runner.invoke(args=["users", "create", "carol", "--password", "long-password-1", "--role", "agent",
                        "--group", "ServiceDesk", "--group", "CAB"])
    updated = runner.invoke(args=["users", "create", "carol", "--update", "--group", "servicedesk",
                                  "--remove-group", "cab"])
    assert updated.exit_code == 0, updated.output
    assert user(services, "carol").group_names == {"ServiceDesk"}  # one ServiceDesk, CAB gone


def test_deactivate_names_the_tasks_waiting_on_the_user(app, client, services):
    from tests.http.desk import Desk

    desk = Desk(client, services)
    started = desk.start("rita", "incident_management", {
        "title": "VPN down", "description": "Cannot connect from home", "category": "network",
        "impact": "medium", "urgency": "medium"})
    number = started["data"]["record_number"]
    desk.complete(number, "triage", "alex", {"category": "network", "priority": "P3", "assignment_group": "NetworkTeam"})
    desk.complete(number, "investigate", "nina", {"outcome": "resolve", "resolution_notes": "Restarted it",
                                                  "cause_category": "configuration"})
    confirm = desk.task_id(number, "confirm_resolution")
    done = app.test_cli_runner().invoke(args=["users", "deactivate", "rita"])
    assert done.exit_code == 0, done.output
    assert f"1 task(s) assigned to rita by name wait for an admin to reassign them: task {confirm} (" in done.output


def test_reset_two_step_turns_off_a_lost_phone_from_the_command_line(app, services, clock):
    from app.services.two_step import step_at, totp

    runner = app.test_cli_runner()
    runner.invoke(args=["users", "create", "boss", "--password", "long-password-1", "--role", "admin"])
    boss = user(services, "boss")
    begun = services.two_step.begin(boss)
    import base64

    secret = base64.b32decode(begun["secret"] + "=" * (-len(begun["secret"]) % 8))
    services.two_step.confirm(boss, "long-password-1", totp(secret, step_at(clock.now())))
    services.session.commit()
    assert services.two_step.enabled(user(services, "boss"))

    done = runner.invoke(args=["users", "reset-two-step", "BOSS"])
    assert done.exit_code == 0 and "two-step sign-in of boss is off" in done.output, done.output
    assert not services.two_step.enabled(user(services, "boss"))
    reset = services.session.scalars(select(AuditEvent).where(AuditEvent.event_type == "two_step_reset")).all()
    assert [(e.actor, e.payload["username"], e.payload["was_on"]) for e in reset] == [("cli", "boss", True)]
    missing = runner.invoke(args=["users", "reset-two-step", "nobody"])
    assert missing.exit_code == 1 and "no user nobody" in missing.output
