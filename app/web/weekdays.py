"""The words of weekday rules (a CI's maintenance windows, app/web/cmdb_pages.py; a recurring
request's schedule, app/web/recurring_pages.py): the days, and the weeks of a month."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l

DAY_LABELS: dict[str, Any] = {"mon": _l("Mon"), "tue": _l("Tue"), "wed": _l("Wed"), "thu": _l("Thu"), "fri": _l("Fri"),
                              "sat": _l("Sat"), "sun": _l("Sun")}
DAY_NAMES: dict[str, Any] = {"mon": _l("Monday"), "tue": _l("Tuesday"), "wed": _l("Wednesday"), "thu": _l("Thursday"),
                             "fri": _l("Friday"), "sat": _l("Saturday"), "sun": _l("Sunday")}
#: A monthly window's week: the choice, and how the list says it.
WEEK_CHOICES: dict[str, Any] = {"first": _l("The first of each day in the month"),
                                "second": _l("The second of each day in the month"),
                                "third": _l("The third of each day in the month"),
                                "fourth": _l("The fourth of each day in the month"),
                                "last": _l("The last of each day in the month")}
WEEK_SAID: dict[str, Any] = {"first": _l("first in the month"), "second": _l("second in the month"),
                             "third": _l("third in the month"), "fourth": _l("fourth in the month"),
                             "last": _l("last in the month")}
