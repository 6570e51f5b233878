"""A form sent after its session ended: back in the form once its user has signed in again.

Someone types a long comment, goes to a meeting, comes back and presses Send: the session timed
out meanwhile, the POST cannot be taken, and it used to answer with the sign-in page, with no way
back to the page and the text gone. Now:

* the sign-in leads back to the page the form was on (the request's Referer when it is a page of
  this site, else the form's own address when that is a page), with the usual "session expired";
* what was typed is kept in the (signed) session cookie, bounded like a refused form's
  (``refused_forms.MAX_COOKIE_BYTES``): text fields only, never a field named as a password
  (``refused_forms.secret``) or drawn with the password widget under another name (the form lists
  those, ``refused_forms.SECRETS_FIELD``), a CSRF or one-time submission token or a file;
* only for the user whose session it was: the cookie names the signed-in user (``OWNER_KEY``,
  set at sign-in), so on a shared computer somebody else who signs in next never sees it, and a
  form sent with no sign-in known at all (signed out in another tab) keeps nothing; and only a
  form that carries that session's CSRF token (another site cannot fill the user's forms);
* the first page shown after that user signs in again carries it (``take``; a JSON data block
  that no browser runs), and static/js/unsent-form.js puts the values back into the form posting
  to the same address, saying so. Nothing is sent again by itself: the user checks and sends.

Kept at most ``KEEP_SECONDS``: a form left for a day is not put back the next morning.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from flask import request, session
from markupsafe import Markup

from app.services.submissions import FIELD as SUBMISSION_FIELD

from . import refused_forms
from .auth import CSRF_FIELD, now_seconds

#: The session key of the kept form, and of the signed-in user's id (set at sign-in).
KEY = "unsent_form"
OWNER_KEY = "owner"
#: How long after it was sent the form is still put back.
KEEP_SECONDS = 3600


def _unkept(name: str) -> bool:
    return name == SUBMISSION_FIELD or refused_forms.secret(name)


#: Forms that hold nothing but secrets (a password, a sign-in code): never kept, whatever their
#: fields are named.
NEVER_KEPT = ("/account/two-step/",)


def keep(owner: Any, token: Any) -> bool:
    """Keep this request's form for ``owner`` (the id of the user whose session it was) when it
    carries that session's form token ``token`` (another site's page posting into an ended session
    puts nothing into the user's forms); False when nothing was kept (no owner or token, nothing
    typed, or too large for the cookie)."""
    sent = request.form.get(CSRF_FIELD)
    if request.path.startswith(NEVER_KEPT):
        return False
    if not isinstance(owner, int) or not isinstance(token, str) or not sent or not hmac.compare_digest(sent, token):
        return False
    # empty ones too: a field emptied before sending comes back empty, not as the page drew it
    values = refused_forms.kept_values(request.form, _unkept)
    if not any(value.strip() for _name, value in values):
        return False
    session[KEY] = {"owner": owner, "action": request.path, "at": now_seconds(), "values": values}
    if refused_forms.cookie_bytes() > refused_forms.MAX_COOKIE_BYTES:
        session.pop(KEY, None)
        return False
    return True


def carried(kept: Any, user_id: int) -> dict[str, Any] | None:
    """What ``start_session`` carries over into the new session: ``kept`` when it is ``user_id``'s
    and recent, else None."""
    if not isinstance(kept, dict) or kept.get("owner") != user_id:
        return None
    try:
        if now_seconds() - float(kept["at"]) > KEEP_SECONDS:
            return None
    except (KeyError, TypeError, ValueError):
        return None
    return kept


def take(user_id: int | None) -> Markup:
    """The kept form as the data block base.html writes into the first page after the sign-in, once
    (empty when there is none for ``user_id``)."""
    if user_id is None or KEY not in session:
        return Markup("")
    kept = carried(session.pop(KEY, None), user_id)
    if kept is None:
        return Markup("")
    data = {"action": str(kept["action"]), "values": [[str(name), str(value)] for name, value in kept["values"]]}
    # JSON in a script element that is no script: "</" and "<!--" could end it early
    text = json.dumps(data, ensure_ascii=True).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup('<script type="application/json" id="unsent-form">{0}</script>').format(Markup(text))
