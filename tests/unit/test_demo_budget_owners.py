"""The demo desk can take a budget owner's own request through approval.

Nobody approves their own catalog request (catalog_request excludes the requester from both
approval tasks), so a desk with a single budget owner can never approve that person's own
budget-owner request: the demo users (app/cli.py ``DEMO_USERS``) need a second BudgetOwner.
"""

from __future__ import annotations

from app.cli import DEMO_USERS
from app.models import ProcessInstance

LAPTOP_PERF = {"justification": "Local model training needs a dedicated GPU and 64 GB of RAM.",
               "workload": "data_analysis", "keyboard_layout": "US", "delivery_location": "Lab 1.03"}


def budget_owners() -> list[str]:
    return [str(spec["username"]) for spec in DEMO_USERS if "BudgetOwners" in spec["groups"]]


def test_there_are_two_demo_budget_owners():
    assert "amy" in budget_owners() and len(budget_owners()) >= 2


def test_a_demo_budget_owners_own_request_is_approved_by_another(app, services):
    runner = app.test_cli_runner()
    deployed = runner.invoke(args=["processes", "deploy"])
    assert deployed.exit_code == 0, deployed.output
    app.config["DEMO_MODE"] = True
    made = runner.invoke(args=["demo", "seed", "--no-records"])
    assert made.exit_code == 0, made.output

    amy = services.users.get_by_username("amy")
    ticket = services.catalog.request_item(amy, "HW-LAPTOP-PERF", LAPTOP_PERF)
    services.session.commit()
    instance = services.session.get(ProcessInstance, ticket.instance_id)
    [task] = [t for t in services.instances.open_tasks(instance) if t.bpmn_id == "approve_budget"]
    others = [name for name in budget_owners() if name != "amy"]
    assert others, "amy is the only demo budget owner: her own request can never be approved"
    approver = services.users.get_by_username(others[0])
    services.tasks.complete(approver, task.id, {"approved": True, "approval_comment": "Within budget."})
    services.session.commit()
    services.session.refresh(ticket)
    assert ticket.status == "fulfilment"
    assert ticket.details["approved_by"] == others[0]
