"""A form refused for its errors, carried across a redirect to its page (Post/Redirect/Get).

A form answered with its page re-rendered left a POST's answer in the browser's history: Back to
it showed Chromium's "Confirm Form Resubmission" page (ERR_CACHE_MISS), Reload sent the form
again. So the view keeps what was sent and what was wrong in the session, answers 303 to the
form's own address, and that GET shows them, once (``take`` removes them). Used by the forms
built from JSON Schema: a task's (app/web/views.py), a start form (start_pages.py) and a catalog
request (catalog_pages.py); the CMDB's forms (cmdb_pages.py), a task's reassign form (views.py),
the record page's forms (ticket_pages.py: each under its own ``page``, so that its errors are shown
beside it alone), and the knowledge, user and group administration, SLA policy and account forms.
Refusals a page words itself (its own checks, a service's refusal read by the page) go through
``back_with``.

The session is a signed cookie (app/web/auth.py), so what is kept stays small:

* one refused form at a time, for one page (``page``: the endpoint and object id); another refusal
  replaces it, and it is dropped after ``KEEP_SECONDS`` (the redirect follows at once: a form
  refused long ago and seen again later would surprise);
* the errors as the services gave them: a ``FormMessage`` (a sentence with values, which the page
  says again in its own language) is kept with its kind and parts, not as its English text;
* the form's text fields only (never an uploaded file, which is not in ``request.form``), without
  the CSRF token (the page renders the session's own), without what ``omit`` names (a form with
  passwords passes ``omit=secret``: the cookie is signed, not encrypted, so whoever holds it reads
  it; a password field is shown empty again anyway), and without the fields the form itself names
  as secret (``SECRETS_FIELD``: a form built from JSON Schema marks each field drawn with the
  password widget, whatever its name, app/web/templates/_form.html);
* when the cookie would outgrow ``MAX_COOKIE_BYTES`` (browsers refuse cookies over 4,096 bytes)
  nothing is kept and ``keep`` answers False: the caller renders the page itself, as before (a very
  long text refused; its Back still asks to resubmit, its text is not lost).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from flask import current_app, redirect, request, session
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from app.errors import ValidationFailed
from app.services.forms import FORM_ERROR_KEY, FormMessage

from .auth import CSRF_FIELD, now_seconds

#: The session key of the kept form.
KEY = "refused_form"
#: How long after the refusal its page still shows it.
KEEP_SECONDS = 120
#: How a FormMessage is marked among the kept errors.
MESSAGE_TAG = "form_message"
#: The largest session cookie value a refusal may make (the cookie's name and attributes take the rest).
MAX_COOKIE_BYTES = 3800
#: A form's own list of its secret fields: one hidden input of this name per field drawn with the
#: password widget, its value the field's name. Whoever sends the form could leave it out, but it
#: keeps only their own typing out of their own cookie: nothing to gain by it.
SECRETS_FIELD = "_secret"


def field_errors(err: ValidationFailed) -> dict[str, list[Any]]:
    """A refusal's messages by field (the whole form's under ``FORM_ERROR_KEY`` when it names none)."""
    return dict(err.details.get("fields") or {FORM_ERROR_KEY: [err.message]})


def secret(name: str) -> bool:
    """A field never kept in the session: a password (``omit=secret``)."""
    return "password" in name.lower()


def kept_values(form: MultiDict[str, str], omit: Callable[[str], bool] | None = None) -> list[list[str]]:
    """``form``'s fields as a session keeps them: without the CSRF token, the form's list of its
    secret fields (``SECRETS_FIELD``) and the fields it names, and what ``omit`` names."""
    listed = set(form.getlist(SECRETS_FIELD))
    return [[name, value] for name, value in form.items(multi=True)
            if name not in (CSRF_FIELD, SECRETS_FIELD) and name not in listed
            and not (omit is not None and omit(name))]


def back_to_form(page: str, err: ValidationFailed, url: str, *,
                 omit: Callable[[str], bool] | None = None) -> Response | None:
    """Post/Redirect/Get for this request's refused form: its values and ``err``'s messages kept
    for the next GET of ``page``, and a 303 to ``url`` (the form's own address); None when they are
    too large to keep, and the caller renders the form in place (422) as before."""
    return back_with(page, field_errors(err), url, omit=omit)


def back_with(page: str, errors: Mapping[str, list[Any]], url: str, form: MultiDict[str, str] | None = None, *,
              omit: Callable[[str], bool] | None = None) -> Response | None:
    """``back_to_form`` for errors the view words itself (a form checked by the page, or a refusal
    said in the page's words): ``form`` (this request's, by default) but the fields ``omit`` names,
    and ``errors``, kept for the next GET of ``page``, a 303 to ``url``; None when too large to keep
    (the caller answers in place)."""
    if keep(page, request.form if form is None else form, errors, omit=omit):
        return redirect(url, 303)
    return None


def keep(page: str, form: MultiDict[str, str], errors: Mapping[str, list[Any]], *,
         omit: Callable[[str], bool] | None = None) -> bool:
    """Keep ``form`` (but the fields ``omit`` names) and its ``errors`` for the next GET of ``page``;
    False when they would make the session cookie too large (nothing is kept then)."""
    values = kept_values(form, omit)
    session[KEY] = {"page": page, "at": now_seconds(), "values": values,
                    "errors": {str(name): [_stored(m) for m in messages] for name, messages in errors.items()}}
    if cookie_bytes() > MAX_COOKIE_BYTES:
        session.pop(KEY, None)
        return False
    return True


def take(page: str) -> tuple[MultiDict[str, str], dict[str, list[str]]] | None:
    """The form refused on ``page`` and its errors, once; None when there is none (or it is stale)."""
    kept: Any = session.get(KEY)
    if not isinstance(kept, dict) or kept.get("page") != page:
        return None
    session.pop(KEY, None)
    try:
        if now_seconds() - float(kept["at"]) > KEEP_SECONDS:
            return None
        values = MultiDict([(str(name), str(value)) for name, value in kept["values"]])
        errors = {str(name): [_restored(m) for m in messages] for name, messages in dict(kept["errors"]).items()}
    except (KeyError, TypeError, ValueError):
        return None
    return values, errors


def _stored(value: Any) -> Any:
    """A message (or one of its parts) as the session keeps it: JSON with Flask's tags (tuples stay tuples)."""
    if isinstance(value, FormMessage):
        return {MESSAGE_TAG: [str(value), value.kind, {key: _stored(part) for key, part in value.parts.items()}]}
    if isinstance(value, (list, tuple)):
        return type(value)(_stored(item) for item in value)
    if isinstance(value, str):
        return str(value)
    return value


def _restored(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {MESSAGE_TAG}:
        text, kind, parts = value[MESSAGE_TAG]
        return FormMessage(str(text), str(kind), **{str(key): _restored(part) for key, part in dict(parts).items()})
    if isinstance(value, (list, tuple)):
        return type(value)(_restored(item) for item in value)
    return value


def cookie_bytes() -> int:
    """The size of the session cookie's value as it would be sent now."""
    serializer = current_app.session_interface.get_signing_serializer(current_app)  # type: ignore[attr-defined]
    if serializer is None:
        return 0
    return len(serializer.dumps(dict(session)))
