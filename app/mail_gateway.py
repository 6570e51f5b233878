"""The mail gateway's edge work, shared by `flask mail ingest` and POST /api/v1/mail/inbound.

A message is parsed outside any transaction, then acted on in one unit of work
(``MailService.receive``). When the desk refuses that work (a closed record, a file too large,
no right to start incidents) the unit of work rolls it back whole, and a second one records the
message as ``failed`` with the reason (``MailService.record_failure``): a refusal leaves no
half-made record behind, and the log still says what came in. Temporary trouble (a lost race,
the database gone: Conflict, ServiceUnavailable) is raised to the caller, recorded nowhere, so
the mail server's next delivery tries again.
"""

from __future__ import annotations

from app.errors import Conflict, ProcessdeskError, ServiceUnavailable
from app.services import Services
from app.services.mail import MailOutcome
from app.unit_of_work import run_unit_of_work


def receive_mail(services: Services, raw: bytes) -> MailOutcome:
    """Take one raw message (the module docstring). Raises ValidationFailed (malformed) and
    PayloadTooLarge before anything is recorded; Conflict / ServiceUnavailable for temporary trouble."""
    mail = services.mail.parse(raw)
    try:
        return run_unit_of_work(services, lambda: services.mail.receive(mail))
    except (Conflict, ServiceUnavailable):
        raise
    except ProcessdeskError as err:
        failure = err
    return run_unit_of_work(services, lambda: services.mail.record_failure(mail, failure))
