"""Configuration: one documented default per key, overridable from the environment.

Environment variables use the prefix ``PROCESSDESK_`` (``PROCESSDESK_MAX_UPLOAD_BYTES=...``);
``DATABASE_URL`` and ``SECRET_KEY`` are also read without the prefix, as hosting platforms set them.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from app.languages import LANGUAGES

DEFAULTS: dict[str, Any] = {
    # SQLAlchemy URL. Default: a SQLite file in the instance folder.
    "DATABASE_URL": None,
    # Signs API tokens and session cookies. Default: generated once into instance/secret_key.
    "SECRET_KEY": None,
    # Seals the audit chain (HMAC-SHA256); never stored in the database. At least 32 characters,
    # e.g. `python -c "import secrets; print(secrets.token_urlsafe(48))"`. Default: derived from
    # SECRET_KEY (HMAC(SECRET_KEY, "processdesk audit chain v1")), so changing SECRET_KEY changes
    # it too; set it on its own to rotate the two separately (then `flask audit reseal`).
    "AUDIT_KEY": None,
    # Seals the two-step sign-in secrets of users' authenticator apps (AES-GCM); never stored in the
    # database. At least 32 characters. Default: derived from SECRET_KEY, so changing SECRET_KEY
    # makes every user's two-step sign-in unreadable (an admin then resets each: app/services/two_step.py).
    "TWO_STEP_KEY": None,
    # Roles whose holders must use two-step sign-in, comma-separated (e.g. "admin,auditor"; empty:
    # nobody must). Signed in by password alone, they reach only the set-up page until it is on.
    "TWO_STEP_REQUIRED_ROLES": "",
    # API token lifetime in seconds.
    "TOKEN_TTL_SECONDS": 12 * 3600,
    # Largest accepted upload (per request), in bytes; larger gets 413 before parsing.
    "MAX_UPLOAD_BYTES": 5 * 1024 * 1024,
    # Largest file attached to a record, in bytes (10 MiB). The attachment routes alone accept a
    # request this large (plus its multipart envelope); every other route keeps MAX_UPLOAD_BYTES.
    "ATTACHMENT_MAX_BYTES": 10 * 1024 * 1024,
    # Most files one record holds.
    "ATTACHMENT_MAX_COUNT": 50,
    # Wall-clock budget of one script / expression evaluation, in seconds.
    "SCRIPT_TIME_LIMIT": 2.0,
    # Memory growth budget of one script evaluation, in MiB.
    "SCRIPT_MEMORY_LIMIT_MB": 256,
    # Live instances kept in memory per worker between requests (0 = off): the next step on an
    # instance skips deserializing it when its stored state is still exactly what the kept run
    # dumped (any change by another worker makes it a miss).
    "RUN_CACHE_SIZE": 256,
    # Demo mode creates the demo users of the README at start-up. Off unless asked for.
    "DEMO_MODE": False,
    # Default and maximum page sizes of list endpoints.
    "PER_PAGE_DEFAULT": 50,
    "PER_PAGE_MAX": 200,
    # werkzeug password hash method. scrypt by default; tests use a cheap pbkdf2 to stay fast.
    "PASSWORD_HASH_METHOD": "scrypt",
    # Run the timer sweep inside the web process (make run). Deployments with several web
    # workers leave this off and run `flask scheduler run` instead.
    "SCHEDULER_ENABLED": False,
    # Seconds between timer sweeps.
    "SWEEP_SECONDS": 5.0,
    # How long a sweeper's claim on an instance lasts before another sweeper may take it over.
    "TIMER_LEASE_SECONDS": 120,
    # Outgoing mail (notifications). SMTP_SECURITY: none | starttls | tls.
    "SMTP_HOST": "127.0.0.1",
    "SMTP_PORT": None,
    "SMTP_SECURITY": "none",
    "SMTP_USERNAME": None,
    "SMTP_PASSWORD": None,
    "SMTP_SENDER": "processdesk@localhost",
    "SMTP_TIMEOUT": 10.0,
    # The language of whoever chose none (en | zh_CN): the notices they are sent (mail and
    # in-app), and the pages when their browser asks for no language the desk speaks.
    "DEFAULT_LANGUAGE": "en",
    # Inbound e-mail (the mail gateway: `flask mail ingest`, POST /api/v1/mail/inbound). The bearer
    # token the HTTP route takes (compared in constant time); unset, the route answers 404.
    "MAIL_INBOUND_TOKEN": None,
    # Largest message the gateway takes, in bytes (25 MiB), attachments and encoding included.
    "MAIL_MAX_BYTES": 25 * 1024 * 1024,
    # Impact and urgency of an incident raised by e-mail (low | medium | high).
    "MAIL_INCIDENT_IMPACT": "low",
    "MAIL_INCIDENT_URGENCY": "low",
    # Where people open the links in notifications.
    "PUBLIC_URL": "http://127.0.0.1:5000",
    # Comma-separated host names webhooks may be sent to, or * for any (admins configure webhooks).
    "WEBHOOK_ALLOWED_HOSTS": "*",
    # Let webhooks reach loopback, private, link-local and other non-public addresses (and localhost).
    # Off: such URLs are refused when saved and again before every delivery, whatever the allowed
    # hosts say, so a webhook cannot probe the network the server runs in. Tests and local demos,
    # whose receivers listen on 127.0.0.1, turn it on (PROCESSDESK_WEBHOOK_ALLOW_PRIVATE_NETWORKS=1).
    "WEBHOOK_ALLOW_PRIVATE_NETWORKS": False,
    # A ready task idle this many hours reminds its assignee or group (0 = never), at most this often.
    "TASK_REMINDER_HOURS": 24,
    # An asset's warranty ending within this many days is told to its owner and support group,
    # once per end date (0 = never; app/services/warranty.py).
    "WARRANTY_NOTICE_DAYS": 30,
    # Web sessions: idle and absolute timeouts; sign-in failures allowed per username and per
    # client address within the window before 429.
    "WEB_IDLE_MINUTES": 30,
    "WEB_ABSOLUTE_HOURS": 12,
    "WEB_LOGIN_MAX_FAILURES": 5,
    "WEB_LOGIN_MAX_FAILURES_PER_IP": 20,
    "WEB_LOGIN_WINDOW_SECONDS": 300,
    # "Forgot your password?" (app/services/password_reset.py): how long the link mailed to a user
    # works, in minutes (1-1440), and how many such requests one client address may make within
    # WEB_LOGIN_WINDOW_SECONDS (beyond them nothing is sent, and the page says the same).
    # Each user is sent at most three links an hour, whatever the address.
    "PASSWORD_RESET_MINUTES": 30,
    "PASSWORD_RESET_MAX_PER_IP": 10,
    # The least time the form's answer takes, in seconds (0-5): a name with an account (a token, a
    # mail, an audit event written) and one without answer alike in time as in words.
    "PASSWORD_RESET_ANSWER_SECONDS": 0.3,
    # Data retention (app/services/retention.py; README "Retention"): how many days old operational
    # rows are kept before the daily purge deletes them; 0 keeps them forever. Never the audit
    # trail, records, instances or anything else the audit history refers to.
    # Outbox e-mails and webhook calls that were sent (and their delivery attempts), from sending.
    "RETENTION_OUTBOX_SENT_DAYS": 30,
    # Outbox messages given up on (dead) or cancelled, from their last attempt.
    "RETENTION_OUTBOX_DEAD_DAYS": 90,
    # In-app notifications that were read, from reading; unread ones, from creation (0, or at
    # least the read period: an unread notice is never dropped before a read one).
    "RETENTION_NOTIFICATIONS_READ_DAYS": 90,
    "RETENTION_NOTIFICATIONS_UNREAD_DAYS": 365,
    # The inbound mail log, which is also the gateway's memory of Message-IDs: a message delivered
    # again after this many days is taken as a new one. 0, or at least RETENTION_MIN_INBOUND_MAIL_DAYS.
    "RETENTION_INBOUND_MAIL_DAYS": 90,
    # API tokens and web sessions that ended (expired, revoked, signed out), from their end.
    "RETENTION_TOKENS_DAYS": 30,
    # The hour (UTC, 0-23) from which the scheduler runs the daily purge; the first sweeper to ask
    # after it runs it, once a day however many sweepers there are.
    "RETENTION_RUN_HOUR": 2,
    # Echo SQL (debugging only).
    "SQL_ECHO": False,
    # The application log on standard error (app.request_log): text (a readable line) or json
    # (an object per line), at DEBUG | INFO | WARNING | ERROR; every line names its request's id.
    "LOG_FORMAT": "text",
    "LOG_LEVEL": "INFO",
    # One INFO line per request: method, path (no query string), status, duration, user, address.
    "ACCESS_LOG": True,
}

#: A shorter AUDIT_KEY is refused at start-up: it would be guessable offline from the stored chain.
MIN_AUDIT_KEY_LENGTH = 32

#: The retention periods, in days (0 = keep forever).
RETENTION_DAYS_KEYS = ("RETENTION_OUTBOX_SENT_DAYS", "RETENTION_OUTBOX_DEAD_DAYS", "RETENTION_NOTIFICATIONS_READ_DAYS",
                       "RETENTION_NOTIFICATIONS_UNREAD_DAYS", "RETENTION_INBOUND_MAIL_DAYS", "RETENTION_TOKENS_DAYS")
#: Mail servers retry a delivery for up to five days (RFC 5321 suggests at least 4-5): the gateway
#: remembers Message-IDs at least a week, so a retried message is not taken for a new one.
RETENTION_MIN_INBOUND_MAIL_DAYS = 7
#: Longest period accepted (100 years): a larger number is a typo, and would overflow dates.
RETENTION_MAX_DAYS = 36500

_BOOL_KEYS = {"DEMO_MODE", "SQL_ECHO", "ACCESS_LOG", "SCHEDULER_ENABLED", "WEBHOOK_ALLOW_PRIVATE_NETWORKS"}
_INT_KEYS = {"WEB_IDLE_MINUTES", "WEB_ABSOLUTE_HOURS", "WEB_LOGIN_MAX_FAILURES", "WEB_LOGIN_MAX_FAILURES_PER_IP",
             "WEB_LOGIN_WINDOW_SECONDS", "TASK_REMINDER_HOURS", "WARRANTY_NOTICE_DAYS", "TIMER_LEASE_SECONDS", "TOKEN_TTL_SECONDS", "MAX_UPLOAD_BYTES", "ATTACHMENT_MAX_BYTES",
             "MAIL_MAX_BYTES", "ATTACHMENT_MAX_COUNT", "SCRIPT_MEMORY_LIMIT_MB", "RUN_CACHE_SIZE", "PER_PAGE_DEFAULT", "PER_PAGE_MAX",
             "RETENTION_RUN_HOUR", "PASSWORD_RESET_MINUTES", "PASSWORD_RESET_MAX_PER_IP", *RETENTION_DAYS_KEYS}
_FLOAT_KEYS = {"SCRIPT_TIME_LIMIT", "SWEEP_SECONDS", "PASSWORD_RESET_ANSWER_SECONDS"}


def _coerce(key: str, value: str) -> Any:
    if key in _BOOL_KEYS:
        return value.strip().lower() in {"1", "true", "yes", "on"}
    if key in _INT_KEYS:
        try:
            return int(value)
        except ValueError:
            raise ValueError(f"PROCESSDESK_{key} must be a whole number, not {value!r}") from None
    if key in _FLOAT_KEYS:
        return float(value)
    return value


def load_config(overrides: Mapping[str, Any] | None, instance_path: str) -> dict[str, Any]:
    """Defaults, then environment, then ``overrides`` (the mapping given to create_app)."""
    config = dict(DEFAULTS)
    for key in DEFAULTS:
        env_value = os.environ.get(f"PROCESSDESK_{key}")
        if env_value is None and key in ("DATABASE_URL", "SECRET_KEY"):
            env_value = os.environ.get(key)
        if env_value is not None and env_value != "":
            config[key] = _coerce(key, env_value)
    config.update(dict(overrides or {}))
    if not config["DATABASE_URL"]:
        Path(instance_path).mkdir(parents=True, exist_ok=True)
        config["DATABASE_URL"] = f"sqlite:///{Path(instance_path) / 'processdesk.sqlite3'}"
    if not config["SECRET_KEY"]:
        config["SECRET_KEY"] = _instance_secret(instance_path)
    if config["DEFAULT_LANGUAGE"] not in LANGUAGES:
        raise ValueError(f"DEFAULT_LANGUAGE must be one of {', '.join(LANGUAGES)}, not {config['DEFAULT_LANGUAGE']!r}")
    if config["AUDIT_KEY"] and len(str(config["AUDIT_KEY"])) < MIN_AUDIT_KEY_LENGTH:
        raise ValueError(f"AUDIT_KEY must be at least {MIN_AUDIT_KEY_LENGTH} characters long")
    from app.request_log import check_settings

    check_settings(config)
    check_retention(config)
    check_password_reset(config)
    from app.services.two_step import required_roles, sealing_key

    required_roles(config)
    sealing_key(config)
    return config


#: The longest a password reset link may work: a day.
MAX_PASSWORD_RESET_MINUTES = 24 * 60
#: The longest ``PASSWORD_RESET_ANSWER_SECONDS`` (a page that long to answer is long enough).
MAX_RESET_ANSWER_SECONDS = 5


def check_password_reset(config: Mapping[str, Any]) -> None:
    """Refuse password reset settings that make no sense, naming the setting (ValueError)."""
    minutes = config["PASSWORD_RESET_MINUTES"]
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not 1 <= minutes <= MAX_PASSWORD_RESET_MINUTES:
        raise ValueError(f"PASSWORD_RESET_MINUTES must be a whole number of minutes from 1 to "
                         f"{MAX_PASSWORD_RESET_MINUTES}, not {minutes!r}")
    per_ip = config["PASSWORD_RESET_MAX_PER_IP"]
    if isinstance(per_ip, bool) or not isinstance(per_ip, int) or per_ip < 1:
        raise ValueError(f"PASSWORD_RESET_MAX_PER_IP must be a whole number of at least 1, not {per_ip!r}")
    floor = config["PASSWORD_RESET_ANSWER_SECONDS"]
    if isinstance(floor, bool) or not isinstance(floor, int | float) or not 0 <= floor <= MAX_RESET_ANSWER_SECONDS:
        raise ValueError(f"PASSWORD_RESET_ANSWER_SECONDS must be a number of seconds from 0 to "
                         f"{MAX_RESET_ANSWER_SECONDS}, not {floor!r}")


def check_retention(config: Mapping[str, Any]) -> None:
    """Refuse retention settings the purge could not honour, naming the setting (ValueError)."""
    for key in (*RETENTION_DAYS_KEYS, "RETENTION_RUN_HOUR"):
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{key} must be a whole number, not {value!r}")
    for key in RETENTION_DAYS_KEYS:
        if not 0 <= config[key] <= RETENTION_MAX_DAYS:
            raise ValueError(f"{key} must be a number of days from 0 (keep forever) to {RETENTION_MAX_DAYS}, "
                             f"not {config[key]}")
    if not 0 <= config["RETENTION_RUN_HOUR"] <= 23:
        raise ValueError(f"RETENTION_RUN_HOUR must be an hour from 0 to 23 (UTC), not {config['RETENTION_RUN_HOUR']}")
    mail_days = config["RETENTION_INBOUND_MAIL_DAYS"]
    if 0 < mail_days < RETENTION_MIN_INBOUND_MAIL_DAYS:
        raise ValueError(f"RETENTION_INBOUND_MAIL_DAYS must be 0 (keep forever) or at least "
                         f"{RETENTION_MIN_INBOUND_MAIL_DAYS}: the inbound mail log is how the mail gateway knows a "
                         f"message it has seen, and mail servers retry deliveries for days, not {mail_days}")
    read, unread = config["RETENTION_NOTIFICATIONS_READ_DAYS"], config["RETENTION_NOTIFICATIONS_UNREAD_DAYS"]
    if unread and (not read or unread < read):
        raise ValueError(f"RETENTION_NOTIFICATIONS_UNREAD_DAYS must be 0 (keep forever) or at least "
                         f"RETENTION_NOTIFICATIONS_READ_DAYS ({read or 'forever'}): an unread notification is kept "
                         f"at least as long as a read one, not {unread}")


def _instance_secret(instance_path: str) -> str:
    """A per-installation secret kept outside the repository, created on first start."""
    path = Path(instance_path) / "secret_key"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key
