from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from app.models import ProcessDefinition, User
from tests.conftest import FIXTURES


def test_users_create_and_update(app, services):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["users", "create", "carol", "--password", "long-password-1", "--group", "ServiceDesk",
                                 "--group", "CAB", "--role", "agent", "--role", "approver"])
    assert result.exit_code == 0, result.output
    carol = services.session.scalar(select(User).where(User.username == "carol"))
    assert carol.group_names == {"ServiceDesk", "CAB"} and carol.roles == {"agent", "approver"}
    bad = runner.invoke(args=["users", "create", "dave", "--password", "short", "--role", "wizard"])
    assert bad.exit_code == 1
    assert "password" in bad.output and "wizard" in bad.output


def test_processes_deploy_from_a_folder_is_idempotent(app, services):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["processes", "deploy", str(FIXTURES / "processes")])
    assert first.exit_code == 0, first.output
    assert "simple_request: version 1 (new version)" in first.output
    again = runner.invoke(args=["processes", "deploy", str(FIXTURES / "processes")])
    assert "simple_request: version 1 (unchanged)" in again.output
    assert services.session.scalar(select(ProcessDefinition).where(ProcessDefinition.process_id == "lane_ticket")).version == 1


def test_processes_deploy_reports_the_broken_file(app, tmp_path: Path):
    broken = tmp_path / "broken.bpmn"
    broken.write_text('<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY a "b">]>\n<x>&a;</x>')
    result = app.test_cli_runner().invoke(args=["processes", "deploy", str(broken)])
    assert result.exit_code == 1
    assert "broken.bpmn" in result.output and "line: 2" in result.output


def test_demo_seed_only_in_demo_mode(app, services):
    runner = app.test_cli_runner()
    refused = runner.invoke(args=["demo", "seed"])
    assert refused.exit_code == 1
    assert services.session.scalar(select(User).where(User.username == "rita")) is None
    app.config["DEMO_MODE"] = True
    made = runner.invoke(args=["demo", "seed"])
    assert made.exit_code == 0, made.output
    names = set(services.session.scalars(select(User.username)))
    assert {"rita", "alex", "amy", "olga", "aude", "admin"} <= names
    roles = {u.username: u.roles for u in services.session.scalars(select(User))}
    assert roles["olga"] == {"process_owner"} and roles["aude"] == {"auditor"} and roles["admin"] == {"admin"}


def test_demo_seed_creates_a_live_desk_from_the_shipped_processes(app, services):
    from app.models import CiRelationship, ConfigurationItem, Ticket

    runner = app.test_cli_runner()
    deployed = runner.invoke(args=["processes", "deploy"])
    assert deployed.exit_code == 0, deployed.output
    assert "catalog:" in deployed.output
    app.config["DEMO_MODE"] = True
    made = runner.invoke(args=["demo", "seed"])
    assert made.exit_code == 0, made.output
    states = {t.number: t.status for t in services.session.scalars(select(Ticket))}
    assert {n[:3] for n in states} == {"INC", "CHG", "PRB", "REQ"}
    assert {"new", "in_progress", "pending", "resolved", "closed"} <= set(states.values())
    # the closed incident was rated, so the reports' satisfaction section has a figure to show
    assert [t.details.get("rating") for t in services.session.scalars(select(Ticket))
            if t.kind == "incident" and t.status == "closed"] == [5]
    # a handful of configuration items, which the demo records name
    cis = {ci.name: ci.status for ci in services.session.scalars(select(ConfigurationItem))}
    assert len(cis) >= 5 and "retired" in cis.values()
    named = {t.ci for t in services.session.scalars(select(Ticket)) if t.ci}
    assert named and named <= set(cis) and all(cis[name] != "retired" for name in named)
    assert services.session.scalar(select(func.count()).select_from(CiRelationship))
    # maintenance windows, outside which the demo's network change is planned: the schedule shows it
    network_change = next(t for t in services.session.scalars(select(Ticket)) if t.ci == "core-sw-01" and t.kind == "change")
    admin = services.users.get_by_username("admin")
    assert [c.kind for c in services.schedule.clashes_for(admin, network_change)] == ["maintenance"]
    # assets: the mail server's warranty ends within the notice period, the printer's has ended
    assert [ci.name for ci in services.cmdb.search(admin, warranty="30")[0]] == ["mail-srv-01"]
    assert [ci.name for ci in services.cmdb.search(admin, warranty="expired")[0]] == ["pr-204"]
    # every role has its demo user, the CMDB's keeper too
    from app.models import Role
    held = {role for user in services.session.scalars(select(User)) for role in user.roles}
    assert {role.value for role in Role} <= held
    # published answers, which the incident's start page offers as a requester types the title
    assert [a.title for a in services.knowledge.related("my wifi keeps dropping")] == ["Wi-Fi drops every few minutes"]
    # stock replies under a record's comment box: the desk's, and one of alex's own for incidents
    wifi = next(t for t in services.session.scalars(select(Ticket)) if t.title == "Wi-Fi drops on floor 3")
    _, offered = services.responses.for_record(services.users.get_by_username("alex"), wifi.number)
    assert [(row.name, row.owner_id is None) for row, _text in offered] == [
        ("Cable swapped", False), ("Please restart first", True), ("We are on it", True)]
    assert all("{{" not in text for _row, text in offered)
    assert [row.name for row, _ in services.responses.for_record(services.users.get_by_username("ivan"), wifi.number)[1]] \
        == ["Please restart first", "We are on it"]
    # time worked on the printer's incident, which the reports add up
    printer = next(t for t in services.session.scalars(select(Ticket)) if t.title == "Printer PR-204 offline")
    _, worked = services.work.of_record(services.users.get_by_username("aude"), printer.number)
    assert worked.total_minutes == 40 and [e.user_name for e in worked.entries] == ["alex"]
    # alex's monthly check, raised on its own on the first Monday of each month
    [routine] = services.recurring.listed(services.users.get_by_username("alex"))
    assert (routine.name, routine.active, routine.week) == ("UPS battery test", True, 1) and routine.next_run_at
    again = runner.invoke(args=["demo", "seed"])
    assert again.exit_code == 0
    assert len(list(services.session.scalars(select(Ticket)))) == len(states)  # idempotent
