"""A catalog item's request form must be a catalog request form (``catalog-<name>.json``, as in
forms/): not a task's form, a process's start form or a UI schema, even though those are deployed
form files too. Refused with 422 naming ``form``, on create and on change; nothing is stored."""

from __future__ import annotations

import json

import pytest

from tests.conftest import fixture_files
from tests.http.helpers import assert_error

FORM = json.dumps({"type": "object", "properties": {"reason": {"type": "string", "title": "Reason"}}}).encode()
FILES = [*fixture_files(), ("catalog-guest-vpn.json", FORM), ("catalog-guest-vpn.ui.json", b"{}"),
         ("catalog-guest-wifi.json", FORM), ("simple_request.start.json", FORM)]
ITEM = {"code": "NET-VPN-GUEST", "name": "Guest VPN", "category_code": "03", "description": "VPN for visitors.",
        "owner_group": "ServiceDesk", "fulfilment_group": "ServiceDesk", "form": "catalog-guest-vpn.json",
        "approval_rule": "manager", "cost": 0, "target_hours": 8}
#: deployed form files that are not catalog request forms (a task's, a start form, a UI schema), and
#: names only like one
NOT_REQUEST_FORMS = ["details-schema.json", "approve-schema.json", "simple_request.start.json",
                     "catalog-guest-vpn.ui.json", "catalog-.json", "catalog-guest-vpn"]


@pytest.fixture()
def olga(services, users, auth) -> dict[str, str]:
    services.definitions.deploy(users["olga"], FILES)
    services.catalog.load({"categories": [{"code": "03", "name": "Network"}]}, users["olga"])
    services.session.commit()
    return auth("olga")


@pytest.mark.parametrize("form", NOT_REQUEST_FORMS)
def test_an_item_cannot_be_created_with_a_form_made_for_something_else(client, olga, form):
    body = assert_error(client.post("/api/v1/catalog/items", headers=olga, json={**ITEM, "form": form}), 422,
                        "validation_failed")
    assert set(body["details"]["fields"]) == {"form"}, body
    assert "not a catalog request form" in body["details"]["fields"]["form"][0]
    assert_error(client.get(f"/api/v1/catalog/items/{ITEM['code']}", headers=olga), 404)


@pytest.mark.parametrize("form", NOT_REQUEST_FORMS[:4])
def test_an_item_cannot_be_changed_to_a_form_made_for_something_else(client, olga, form):
    assert client.post("/api/v1/catalog/items", headers=olga, json=ITEM).status_code == 201
    body = assert_error(client.patch(f"/api/v1/catalog/items/{ITEM['code']}", headers=olga, json={"form": form}),
                        422, "validation_failed")
    assert set(body["details"]["fields"]) == {"form"}, body
    item = client.get(f"/api/v1/catalog/items/{ITEM['code']}", headers=olga).get_json()
    assert item["form"] == "catalog-guest-vpn.json"


def test_catalog_request_forms_are_accepted_and_one_not_deployed_is_still_refused(client, olga):
    created = client.post("/api/v1/catalog/items", headers=olga, json=ITEM)
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["form"] == "catalog-guest-vpn.json"
    changed = client.patch(f"/api/v1/catalog/items/{ITEM['code']}", headers=olga,
                           json={"form": "catalog-guest-wifi.json"})
    assert changed.status_code == 200 and changed.get_json()["form"] == "catalog-guest-wifi.json"
    body = assert_error(client.patch(f"/api/v1/catalog/items/{ITEM['code']}", headers=olga,
                                     json={"form": "catalog-not-deployed.json"}), 422)
    assert body["details"]["fields"] == {"form": ["form file is not deployed"]}
    cleared = client.patch(f"/api/v1/catalog/items/{ITEM['code']}", headers=olga, json={"form": None})
    assert cleared.status_code == 200 and cleared.get_json()["form"] is None
