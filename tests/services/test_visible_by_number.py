"""``RecordService.visible_by_number``: the records a list of numbers names that a user may see, in
one query, by the rule of reading a record (``may_see``). ``linkable_records`` (operations.py)
is meant to read its numbers with it instead of one look-up (and one visibility query) per number."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import sent_statements
from tests.http.desk import Desk
from tests.http.test_e2e_incident import START


@pytest.fixture()
def desk(client: Any, services: Any) -> Desk:
    return Desk(client, services)


def test_the_records_a_user_may_see_are_read_in_one_query(desk: Desk, services: Any):
    hers = [desk.start("rita", "incident_management", START)["data"]["record_number"] for _ in range(3)]
    other = desk.start("mona", "incident_management", START)["data"]["record_number"]
    problem = desk.start("paul", "problem_management", {"title": "VPN drops", "description": "Every morning"})
    prb = problem["data"]["record_number"]
    asked = [*hers, other, prb, "INC-999999"]
    records = services.records
    for who, expected in (("rita", set(hers)), ("alex", {*hers, other, prb})):
        services.session.expunge_all()  # no record in the session already
        user = services.users.get_by_username(who)
        assert user.roles and user.group_names  # the user's own rows, read before
        with sent_statements(services.session.connection().engine) as sent:
            found = records.visible_by_number(user, asked)
        assert len([s for s in sent if s.upper().startswith("SELECT")]) == 1, sent
        assert set(found) == expected
        assert all(found[n].number == n for n in found)
        # the same answer as reading each record and asking may_see
        one_by_one = {n for n in asked if n != "INC-999999" and records.may_see(user, records.by_number(n))}
        assert one_by_one == expected
    assert records.visible_by_number(services.users.get_by_username("rita"), []) == {}


def test_linkable_records_reads_every_number_in_one_query(desk: Desk, services: Any):
    from app.services.operations import linkable_records

    hers = [desk.start("rita", "incident_management", START)["data"]["record_number"] for _ in range(3)]
    other = desk.start("mona", "incident_management", START)["data"]["record_number"]
    prb = desk.start("paul", "problem_management", {"title": "VPN drops", "description": "Every morning"})["data"]["record_number"]
    services.session.expunge_all()
    rita = services.users.get_by_username("rita")
    assert rita.roles is not None and rita.group_names is not None
    given = [f" {hers[1].lower()} ", hers[0], hers[1], other, prb, "INC-999999", ""]
    with sent_statements(services.session.connection().engine) as sent:
        found, problems = linkable_records(services, rita, given, kind="incident")
    assert len([s for s in sent if s.upper().startswith("SELECT")]) == 1, sent
    assert [t.number for t in found] == [hers[1], hers[0]]  # in the order given, each once
    # a record rita may not see reads as missing, as one that does not exist
    assert [str(p) for p in problems] == [f"{other} does not exist", f"{prb} does not exist", "INC-999999 does not exist"]
    alex = services.users.get_by_username("alex")
    _found, problems = linkable_records(services, alex, [prb], kind="incident")
    assert [str(p) for p in problems] == [f"{prb} is not an incident"]


def test_a_records_links_are_read_in_as_many_queries_however_many_there_are(desk: Desk, services: Any):
    """A requester's view of her record's links: the links, the records at either end and which
    of them she may see, in a fixed number of queries (one visibility query per link before)."""
    hers = desk.start("rita", "incident_management", START)["data"]["record_number"]
    rita_sees, others = [], []
    for _ in range(6):
        rita_sees.append(desk.start("rita", "incident_management", START)["data"]["record_number"])
        others.append(desk.start("mona", "incident_management", START)["data"]["record_number"])
    alex = services.users.get_by_username("alex")

    def statements_for(count: int) -> tuple[int, list[str]]:
        ticket = services.records.by_number(hers)
        for number in [*rita_sees[:count], *others[:count]]:
            if not any(link["number"] == number for link in services.records.links(ticket, alex)):
                services.records.link(alex, ticket, services.records.by_number(number), "related")
        services.session.commit()
        services.session.expunge_all()
        rita = services.users.get_by_username("rita")
        assert rita.roles is not None and rita.group_names is not None
        ticket = services.records.by_number(hers)
        with sent_statements(services.session.connection().engine) as sent:
            shown = services.records.links(ticket, rita)
        assert sorted(link["number"] for link in shown) == sorted(rita_sees[:count])  # mona's stay hidden
        return len([s for s in sent if s.upper().startswith("SELECT")]), sent

    few, _ = statements_for(2)
    many, sent = statements_for(6)
    assert many == few, sent
