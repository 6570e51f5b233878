"""The header's links to the pages that run the desk rather than work in it.

The bar was full at 1280 px for an admin (every page, three start links): no further link fitted.
So the pages a user reaches through a managing role (admin, process owner, auditor, configuration
manager) are gathered in one disclosure menu (``<details>`` in templates/base.html: it opens
without JavaScript; static/js/header-menu.js closes it on Escape and on a click outside).

Which links, per user:

* the candidates, in this order: CMDB, Processes, Change schedule, Reports, SLA policies, Audit, Users, Groups, each
  offered only to those who may open it (the same checks as the pages themselves);
* a user without a managing role (an agent) keeps the few they have (CMDB, Processes, Change schedule, Reports) in
  the bar: they have room, and those pages are part of their daily work; requesters have none;
* a user with a managing role gets them in the menu, unless the menu would hold a single link (a
  configuration manager's CMDB), which then stays in the bar.

The menu is called "Admin" for admins and "Manage" for the other managing roles (an auditor
administers nothing). A link is the current page when its key is the page's ``active``; a page
whose own link the user is not offered marks its parent's (an agent on the SLA policies, which
the reports page links to, has Reports marked).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flask_babel import gettext as _

from app.models.user import Role, User
from app.services import policy
from app.services.audit import AUDIT_READER_ROLES
from app.services.cmdb import may_read as cmdb_may_read
from app.services.reports import may_read_reports
from app.services.schedule import reads_schedule
from app.services.sla import may_write_policies
from app.services.users import DIRECTORY_READER_ROLES

from .errors import optional_url

#: The roles whose holders get the menu: the links they see are theirs to run the desk with.
MANAGING_ROLES = (Role.ADMIN, Role.PROCESS_OWNER, Role.AUDITOR, Role.CONFIGURATION_MANAGER)
#: Who edits the SLA policies (app/web/sla_pages.py); others read them from the reports page.
#: A page's ``active`` -> the page whose link stands for it when its own is not offered.
PARENTS = {"sla": "reports", "groups": "users"}


@dataclass(frozen=True)
class NavLink:
    key: str
    url: str
    label: str
    current: bool = False


@dataclass(frozen=True)
class HeaderLinks:
    bar: list[NavLink] = field(default_factory=list)
    menu: list[NavLink] = field(default_factory=list)
    menu_label: str = ""

    @property
    def menu_current(self) -> bool:
        return any(link.current for link in self.menu)


def _candidates(user: User) -> list[tuple[str, str, str]]:
    """(key, endpoint, label) of each management page ``user`` may open, in the header's order."""
    offered = [
        ("cmdb", "web.cmdb", _("CMDB"), cmdb_may_read(user)),
        ("processes", "web.processes", _("Processes"), policy.may_read_definitions(user)),
        ("schedule", "web.change_schedule", _("Change schedule"), reads_schedule(user)),
        ("reports", "web.reports", _("Reports"), may_read_reports(user)),
        ("sla", "web.sla_policies", _("SLA policies"), may_write_policies(user)),
        ("audit", "web.audit", _("Audit"), user.has_role(*AUDIT_READER_ROLES)),
        ("users", "web.users", _("Users"), user.has_role(*DIRECTORY_READER_ROLES)),
        ("groups", "web.groups", _("Groups"), user.has_role(*DIRECTORY_READER_ROLES)),
    ]
    return [(key, endpoint, label) for key, endpoint, label, allowed in offered if allowed]


def header_links(user: User | None, active: str | None) -> HeaderLinks:
    """The management links of ``user``'s header on the page ``active``: in the bar, in the menu."""
    if user is None:
        return HeaderLinks()
    found = [(key, url, label) for key, endpoint, label in _candidates(user)
             if (url := optional_url(endpoint)) is not None]
    keys = {key for key, _url, _label in found}
    current = active if active in keys else PARENTS.get(active or "")
    links = [NavLink(key, url, label, key == current) for key, url, label in found]
    if not user.has_role(*MANAGING_ROLES) or len(links) < 2:
        return HeaderLinks(bar=links)
    return HeaderLinks(menu=links, menu_label=_("Admin") if user.has_role(Role.ADMIN) else _("Manage"))
