"""flask commands: database, processes, users, audit. Each command is one unit of work."""

from __future__ import annotations

import getpass
import json
import os
import sys
from pathlib import Path
from typing import Any, Literal

import click
from flask import Flask, current_app

from .errors import ProcessdeskError
from .services.audit import UNKEYED, UNKEYED_HASH, AuditKey
from .services.content_texts import catalog_translation_files
from .services.demo import DemoDesk
from .unit_of_work import run_unit_of_work

ROOT = Path(__file__).resolve().parent.parent
#: sysexits.h codes `flask mail ingest` exits with (mail servers read them).
EX_DATAERR, EX_NOUSER, EX_TEMPFAIL, EX_NOPERM = 65, 67, 75, 77
#: The shipped service catalog in processes/: loaded by `processes deploy`, not deployed as a form.
CATALOG_FILE = "catalog.json"

# Demo accounts: created only by `flask demo seed` in demo mode (make run). Their passwords are
# public by design (README); never enable demo mode on a real desk.
DEMO_USERS: list[dict[str, Any]] = [
    {"username": "rita", "name": "Rita Requester", "password": "rita-demo-pw", "roles": ["requester"],
     "groups": ["Requesters"], "manager": "mona"},
    {"username": "mona", "name": "Mona Manager", "password": "mona-demo-pw", "roles": ["approver", "requester"],
     "groups": ["LineManagers"]},
    {"username": "alex", "name": "Alex Agent", "password": "alex-demo-pw", "roles": ["agent", "requester"],
     "groups": ["ServiceDesk", "NetworkTeam", "ApplicationSupport", "DesktopSupport", "ProblemManagers"]},
    {"username": "ivan", "name": "Ivan Implementer", "password": "ivan-demo-pw", "roles": ["agent"],
     "groups": ["Implementers", "MajorIncidentManagers", "IdentityTeam", "MessagingTeam", "SoftwareLicensing",
                "Facilities", "DesktopSupport"]},
    {"username": "amy", "name": "Amy Approver", "password": "amy-demo-pw", "roles": ["approver", "requester"],
     "groups": ["ChangeManagers", "CAB", "EmergencyCAB", "BudgetOwners", "ServiceOwners"]},
    {"username": "bob", "name": "Bob Budget", "password": "bob-demo-pw", "roles": ["approver"], "groups": ["BudgetOwners"]},
    {"username": "carl", "name": "Carl CAB", "password": "carl-demo-pw", "roles": ["approver"], "groups": ["CAB"]},
    {"username": "olga", "name": "Olga Owner", "password": "olga-demo-pw", "roles": ["process_owner"], "groups": []},
    {"username": "aude", "name": "Aude Auditor", "password": "aude-demo-pw", "roles": ["auditor"], "groups": []},
    {"username": "cora", "name": "Cora Config", "password": "cora-demo-pw", "roles": ["configuration_manager"],
     "groups": []},
    {"username": "admin", "name": "Ada Admin", "password": "admin-demo-pw", "roles": ["admin"], "groups": []},
]


def _services():  # type: ignore[no-untyped-def]
    return current_app.extensions["processdesk"].services()


def _fail(err: ProcessdeskError) -> None:
    click.echo(f"error: {err.message}", err=True)
    for key, value in err.details.items():
        click.echo(f"  {key}: {value}", err=True)
    sys.exit(1)


def _verify_chain():  # type: ignore[no-untyped-def]
    """The audit chain's report under the desk's key (``AuditLog.verify``)."""
    services = _services()
    try:
        return services.audit.verify()
    finally:
        services.session.close()


def alembic_config(url: str):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade_database(url: str) -> None:
    from alembic import command

    command.upgrade(alembic_config(url), "head")


def register_cli(app: Flask) -> None:
    @app.cli.group("db")
    def db_group() -> None:
        """Database schema (Alembic)."""

    @db_group.command("upgrade")
    def db_upgrade() -> None:
        """Upgrade the database to the newest schema."""
        upgrade_database(current_app.config["DATABASE_URL"])
        click.echo("database is at the newest schema")

    @db_group.command("backup")
    @click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
    def db_backup(path: Path) -> None:
        """Write every row of the database to PATH (a new gzip file; app/services/backup.py)."""
        from .services.backup import write_backup

        engine = current_app.extensions["processdesk"].db_engine
        try:
            summary = write_backup(engine, path, now=_services().runtime.clock.now())
        except ProcessdeskError as err:
            _fail(err)
        click.echo(f"backup written to {summary.path}: {summary.total} rows of {len(summary.rows)} tables, "
                   f"schema {summary.schema}")

    @db_group.command("restore")
    @click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
    def db_restore(path: Path) -> None:
        """Restore a backup into this desk's database, which must be new (`flask db upgrade`) and
        at the backup's schema; all or nothing. Then checks the restored audit chain."""
        from .services.backup import read_backup

        engine = current_app.extensions["processdesk"].db_engine
        try:
            summary = read_backup(engine, path)
        except ProcessdeskError as err:
            _fail(err)
        click.echo(f"restored {summary.total} rows of {len(summary.rows)} tables from {summary.path}")
        report = _verify_chain()
        if report.ok:
            click.echo(f"audit chain intact: {report.checked} events")
        else:
            click.echo("the restored audit chain does not verify under this desk's audit key: run "
                       "`flask audit verify` for why (a desk restored with another PROCESSDESK_AUDIT_KEY "
                       "or SECRET_KEY needs the key it was sealed with)", err=True)
            sys.exit(1)

    @app.cli.group("processes")
    def processes_group() -> None:
        """Deploy and validate BPMN/DMN/form files."""

    @processes_group.command("deploy")
    @click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
    @click.option("--reset-catalog", is_flag=True,
                  help="Write catalog.json over the catalog items already in the database too (their cost, "
                       "status, form...), instead of only creating the items missing from it.")
    @click.option("--force", is_flag=True,
                  help="Deploy every file as it is, even content some version already held (to bring "
                       "back an earlier version).")
    def processes_deploy(paths: tuple[Path, ...], reset_catalog: bool, force: bool) -> None:
        """Deploy files or folders (default: processes/ and forms/); all or nothing.

        The files seed the desk; the database is the source of truth after that. A file whose exact
        content was deployed before (as any version, even if the desk has changed it since, e.g. in
        the modeler) is skipped: only content never deployed makes a new version (--force deploys
        it all, to bring back an earlier version). catalog.json
        creates the items missing from the catalog and leaves those already there as they are
        (unless --reset-catalog)."""
        chosen = list(paths) or [ROOT / "processes", ROOT / "forms"]
        uploads: list[tuple[str, bytes]] = []
        catalog: dict[str, Any] | None = None
        for path in chosen:
            files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
            for file in files:
                if file.name == CATALOG_FILE:
                    catalog = json.loads(file.read_text(encoding="utf-8"))
                elif file.suffix.lower() in (".bpmn", ".dmn", ".json"):
                    uploads.append((file.name, file.read_bytes()))
        if not uploads and catalog is None:
            click.echo("nothing to deploy")
            return
        services = _services()

        def work() -> tuple[Any, dict[str, int] | None, list[Any]]:
            deploy = services.definitions.deploy
            result = deploy(None, uploads, keep_deployed=not force) if uploads else None
            skipped = list(result.skipped) if result else []
            # The catalog names request forms, so it loads after the files that hold them; its
            # translations are checked against it, so they deploy once it is loaded.
            counts = services.catalog.load(catalog, reset=reset_catalog) if catalog is not None else None
            translations = catalog_translation_files(catalog) if catalog is not None else []
            if translations:
                skipped += deploy(None, translations, keep_deployed=not force).skipped
            return result, counts, skipped

        try:
            result, counts, skipped = run_unit_of_work(services, work)
        except ProcessdeskError as err:
            _fail(err)
            return
        finally:
            services.session.close()
        for process in result.processes if result else []:
            state = "new version" if process.created else "unchanged"
            click.echo(f"{process.process_id}: version {process.version} ({state})")
        for file in skipped:
            if file.changed_since:
                click.echo(f"{file.name}: skipped, {file.note}")
        if skipped:
            click.echo(f"{len(skipped)} file(s) already deployed before: skipped (the desk's own changes stay)")
        if counts is not None:
            line = f"catalog: {counts['categories']} categories, {counts['items']} items ({counts['created']} created, "
            line += f"{counts['reset']} reset from the file)" if reset_catalog else f"{counts['kept']} left as they are)"
            click.echo(line)

    @processes_group.command("migrate")
    @click.argument("process_id")
    @click.option("--from", "from_version", type=int, required=True, help="The version whose instances move.")
    @click.option("--to", "to_version", type=int, default=None, help="The version they move to (default: the latest).")
    @click.option("--dry-run", is_flag=True, help="Say what would move and what would not; move nothing.")
    def processes_migrate(process_id: str, from_version: int, to_version: int | None, dry_run: bool) -> None:
        """Move the running and failed instances of a version to another version of their process.

        Each instance moves in its own transaction; one at a task the version lacks stays where it
        is and is named with why (exit status 1 then). Audited (instance_migrated)."""
        services = _services()
        after, moved, refused = 0, 0, 0
        try:
            while True:
                result = services.migration.migrate_version(
                    None, process_id, from_version, to_version, transaction=lambda work: run_unit_of_work(services, work),
                    dry_run=dry_run, after=after)
                to_version = result.to_version  # every batch to the version the first one chose
                moved += len(result.moved)
                refused += len(result.refused)
                for item in result.refused:
                    click.echo(f"instance {item['instance_id']}: stays on version {result.from_version}: {item['message']}")
                if not result.remaining:
                    break
                after = result.next_after
        except ProcessdeskError as err:
            _fail(err)
            return
        finally:
            services.session.close()
        verb = "would move" if dry_run else "moved"
        click.echo(f"{process_id}: {moved} instance(s) {verb} from version {from_version} to version "
                   f"{result.to_version}; {refused} stay")
        if refused:
            sys.exit(1)

    @app.cli.group("users")
    def users_group() -> None:
        """Manage users, groups and roles."""

    @users_group.command("create")
    @click.argument("username")
    @click.option("--password", default=None, help="Asked for (hidden, twice) when a new user is created without it.")
    @click.option("--group", "groups", multiple=True, help="Group (lane) name; repeatable. Created when missing.")
    @click.option("--role", "roles", multiple=True, help="Role; repeatable.")
    @click.option("--name", "display_name", default=None)
    @click.option("--email", default=None)
    @click.option("--manager", default=None, help="The line manager's username.")
    @click.option("--update", is_flag=True,
                  help="The user may exist already: then add the --role and --group named (keeping the others), "
                       "and set --name, --email, --manager and --password when given.")
    @click.option("--remove-role", "remove_roles", multiple=True, help="With --update: take this role away; repeatable.")
    @click.option("--remove-group", "remove_groups", multiple=True,
                  help="With --update: take the user out of this group; repeatable.")
    def users_create(username: str, password: str | None, groups: tuple[str, ...], roles: tuple[str, ...],
                     display_name: str | None, email: str | None, manager: str | None, update: bool,
                     remove_roles: tuple[str, ...], remove_groups: tuple[str, ...]) -> None:
        """Create a user. An existing user (in any letter case) is refused unless --update is given.

        With --update an existing user keeps every role and group not named: --role and --group add,
        --remove-role and --remove-group take away; a new --password ends their sessions and tokens.
        Without --update nothing about an existing user changes (exit code 1)."""
        if (remove_roles or remove_groups) and not update:
            raise click.UsageError("--remove-role and --remove-group need --update")
        services = _services()
        try:
            existing = services.users.find(username)
            services.session.rollback()
            if existing is not None and not update:
                click.echo(f"error: user {existing.username} exists already (usernames ignore letter case); "
                           "nothing was changed. Use --update to change them.", err=True)
                sys.exit(1)
            if existing is None and password is None:
                password = click.prompt("Password", hide_input=True, confirmation_prompt=True)

            def save() -> str:
                if existing is None:
                    user = services.users.create_user(username, str(password), groups=groups, roles=roles,
                                                      display_name=display_name, email=email, manager=manager)
                    return f"user {user.username} created"
                user = services.users.get_by_username(username)
                # group names ignore case as the database folds them (find_group), not as Python does
                removed = {found.id for name in remove_groups if (found := services.users.find_group(name))}
                changes: dict[str, Any] = {
                    "roles": sorted((user.roles | set(roles)) - set(remove_roles)),
                    "groups": sorted({g.name for g in user.groups if g.id not in removed} | set(groups))}
                for key, value in (("display_name", display_name), ("email", email), ("manager", manager)):
                    if value is not None:
                        changes[key] = value
                services.users.update_user(None, user.username, changes)
                if password is not None:
                    services.users.reset_password(None, user.username, password)
                return f"user {user.username} updated"

            click.echo(run_unit_of_work(services, save))
        except ProcessdeskError as err:
            _fail(err)
        finally:
            services.session.close()

    def _set_active(username: str, active: bool) -> None:
        services = _services()
        try:
            if active:
                user = run_unit_of_work(services, lambda: services.users.reactivate_user(None, username))
                click.echo(f"user {user.username} is active")
                return
            done = run_unit_of_work(services, lambda: services.users.deactivate_user(None, username))
            if done.already:
                click.echo(f"user {done.user.username} was inactive already")
                return
            released = f"; {len(done.released)} claimed task(s) back in their queues" if done.released else ""
            click.echo(f"user {done.user.username} deactivated: sessions and API tokens ended{released}")
            if done.assigned:
                # nobody else may take these: an admin hands each on (POST /api/v1/tasks/<id>/reassign)
                click.echo(f"{len(done.assigned)} task(s) assigned to {done.user.username} by name wait for an admin "
                           "to reassign them: " + ", ".join(f"task {t.id} ({t.name})" for t in done.assigned))
        except ProcessdeskError as err:
            _fail(err)
        finally:
            services.session.close()

    @users_group.command("deactivate")
    @click.argument("username")
    def users_deactivate(username: str) -> None:
        """Deactivate a leaver: no sign-in, sessions and API tokens end, claimed tasks go back to their
        queues. Refused for the last active admin."""
        _set_active(username, False)

    @users_group.command("activate")
    @click.argument("username")
    def users_activate(username: str) -> None:
        """Let a deactivated user sign in again (with their old password)."""
        _set_active(username, True)

    @users_group.command("reset-two-step")
    @click.argument("username")
    def users_reset_two_step(username: str) -> None:
        """Turn off a user's two-step sign-in (a lost phone, when no admin can sign in to do it on
        the user's page): they sign in with their password and set it up again. Audited, and the
        user is mailed."""
        services = _services()
        try:
            user = run_unit_of_work(services, lambda: services.two_step.reset(None, username))
            click.echo(f"two-step sign-in of {user.username} is off: they sign in with their password")
        except ProcessdeskError as err:
            _fail(err)
        finally:
            services.session.close()

    @app.cli.group("demo")
    def demo_group() -> None:
        """Demo data (only with PROCESSDESK_DEMO_MODE=1)."""

    @demo_group.command("seed")
    @click.option("--records/--no-records", "with_records", default=True, help="Also create demo records.")
    def demo_seed(with_records: bool) -> None:
        """Create the README's demo users, one per role (those that exist already are left as they
        are, so seeding again changes nothing). Refused unless demo mode is on."""
        if not current_app.config.get("DEMO_MODE"):
            click.echo("demo mode is off (set PROCESSDESK_DEMO_MODE=1); no demo users created", err=True)
            sys.exit(1)
        services = _services()
        try:
            def seed() -> None:
                for spec in DEMO_USERS:
                    if services.users.find(str(spec["username"])) is None:
                        services.users.create_user(
                            str(spec["username"]), str(spec["password"]), groups=list(spec["groups"]),
                            roles=list(spec["roles"]), display_name=str(spec["name"]),
                            email=f"{spec['username']}@demo.processdesk.test")
                for spec in DEMO_USERS:
                    if spec.get("manager"):
                        services.users.set_manager(str(spec["username"]), str(spec["manager"]))

            run_unit_of_work(services, seed)
            records = run_unit_of_work(services, lambda: DemoDesk(services).seed()) if with_records else []
        except ProcessdeskError as err:
            _fail(err)
            return
        except (StopIteration, KeyError) as err:
            # The shipped processes changed shape: say which demo step no longer fits.
            click.echo(f"demo records skipped: the shipped processes do not match the demo script ({err!r})", err=True)
            records = []
        finally:
            services.session.close()
        for spec in DEMO_USERS:
            click.echo(f"demo user {spec['username']:<8} password {spec['password']:<14} roles {','.join(spec['roles'])}")
        if records:
            click.echo(f"demo records: {', '.join(records)}")

    @app.cli.group("scheduler")
    def scheduler_group() -> None:
        """The timer sweeper."""

    @scheduler_group.command("run")
    @click.option("--once", is_flag=True, help="Sweep once and exit (cron-style).")
    def scheduler_run(once: bool) -> None:
        """Sweep due timers every SWEEP_SECONDS (several of these may run at once)."""
        from .scheduler import retention_once, run_blocking, sweep_once

        if once:
            app_object = current_app._get_current_object()  # type: ignore[attr-defined]
            report = sweep_once(app_object)
            click.echo(f"claimed {report.claimed}, fired {report.fired}, conflicts {report.conflicts}")
            # cron-style deployments purge too: the first --once after the run hour, once a day
            purged = retention_once(app_object)
            if purged is not None:
                click.echo(f"retention: deleted {purged.total} rows")
            return
        click.echo(f"sweeping every {current_app.config['SWEEP_SECONDS']} s; Ctrl-C to stop")
        run_blocking(current_app._get_current_object())  # type: ignore[attr-defined]

    @app.cli.group("retention")
    def retention_group() -> None:
        """Data retention: purge old operational rows (README "Retention")."""

    @retention_group.command("run")
    @click.option("--dry-run", is_flag=True, help="Count what would be deleted; delete nothing.")
    def retention_run(dry_run: bool) -> None:
        """Delete the rows past their RETENTION_*_DAYS now (the scheduler does it daily), printing
        the count per table; audited when it deleted anything."""
        services = _services()
        try:
            report = services.retention.purge(dry_run=dry_run, actor_name="cli")
        finally:
            services.session.close()
        for table, count in report.deleted.items():
            click.echo(f"{table:<20} {count}")
        click.echo(f"{report.total} rows {'would be deleted (dry run)' if dry_run else 'deleted'}")

    @app.cli.group("mail")
    def mail_group() -> None:
        """The mail gateway (inbound e-mail)."""

    @mail_group.command("ingest")
    def mail_ingest() -> None:
        """Take one e-mail message on standard input (a mail server's pipe delivery): a reply
        becomes a comment on its record, any other message a new incident (app/services/mail.py).

        Exit status (sysexits, which Postfix and Exim read): 0 created, commented, ignored or a
        duplicate; 67 (EX_NOUSER) a sender who is no active user; 65 (EX_DATAERR) a message that is
        malformed or too large, or that the desk refused as data (a file too large); 77 (EX_NOPERM)
        a sender who may not do this (a closed record, no right to raise incidents); 75
        (EX_TEMPFAIL) temporary trouble, or any unexpected error (the mail server keeps the
        message and delivers it again later). A line on standard error says why."""
        from .errors import Conflict, ServiceUnavailable
        from .mail_gateway import receive_mail
        from .services.mail import FAILED, REFUSED

        services = _services()
        limit = int(current_app.config["MAIL_MAX_BYTES"])
        raw = sys.stdin.buffer.read(limit + 1)
        try:
            outcome = receive_mail(services, raw)
        except (Conflict, ServiceUnavailable) as err:
            click.echo(f"temporary failure: {err.message}", err=True)
            sys.exit(EX_TEMPFAIL)
        except ProcessdeskError as err:
            click.echo(f"refused: {err.message}", err=True)
            sys.exit(EX_DATAERR)
        except Exception as err:  # noqa: BLE001 - whatever broke, the mail server keeps the message and tries again
            click.echo(f"temporary failure: {type(err).__name__}: {err}"[:500], err=True)
            sys.exit(EX_TEMPFAIL)
        finally:
            services.session.close()
        line = f"{outcome.outcome}{' (duplicate)' if outcome.duplicate else ''}"
        line += f" {outcome.number}" if outcome.number else ""
        line += f": {outcome.reason}" if outcome.reason else ""
        if outcome.outcome == REFUSED:
            click.echo(line, err=True)
            sys.exit(EX_NOUSER)
        if outcome.outcome == FAILED and not outcome.duplicate:
            click.echo(line, err=True)
            sys.exit(EX_NOPERM if outcome.status in (403, 404) else EX_DATAERR)
        click.echo(line)

    @app.cli.group("audit")
    def audit_group() -> None:
        """The audit chain."""

    @audit_group.command("verify")
    def audit_verify() -> None:
        """Walk the chain under the desk's audit key; exit 1 naming the first broken event."""
        report = _verify_chain()
        if report.ok:
            click.echo(f"audit chain intact: {report.checked} events, sealed with key {(report.key_id or '')[:16]}")
            return
        if report.wrong_key:
            click.echo(
                f"audit chain sealed with ANOTHER KEY: it does not verify with this desk's audit key "
                f"{(report.key_id or '')[:16]}; its head names key {(report.sealed_with or '')[:16]}. "
                "Set PROCESSDESK_AUDIT_KEY (or SECRET_KEY) to the key it was sealed with, or rotate with "
                "`flask audit reseal --old-key-env VAR` / `--old-secret-key-env VAR`.",
                err=True,
            )
            sys.exit(1)
        click.echo(
            f"audit chain BROKEN at event seq={report.first_broken_seq} id={report.first_broken_id}: {report.reason} "
            f"({report.checked} events verified before it)",
            err=True,
        )
        if report.reason == UNKEYED_HASH and report.first_broken_seq == 1 and report.sealed_with is None:
            click.echo("  a chain written before keyed sealing: after checking it is the one you upgraded, "
                       "seal it with `flask audit reseal --legacy`", err=True)
        elif report.reason == UNKEYED_HASH and report.sealed_with is not None:
            click.echo(f"  the head names audit key {report.sealed_with[:16]}: either the desk ran after the upgrade "
                       "(then `flask audit reseal --legacy` finds events sealed with that key after the old ones, "
                       "which vouch for them) or the chain was rewritten without the key (then reseal refuses it)",
                       err=True)
        sys.exit(1)

    @audit_group.command("reseal")
    @click.option("--legacy", is_flag=True,
                  help="The chain was written before keyed sealing (plain SHA-256): the one-time step after upgrading.")
    @click.option("--old-key-env", metavar="VAR", default=None,
                  help="Environment variable holding the AUDIT_KEY the chain is sealed with now (key rotation).")
    @click.option("--old-secret-key-env", metavar="VAR", default=None,
                  help="Environment variable holding the SECRET_KEY the chain's audit key was derived from.")
    @click.option("--by", "by", default=None, help="Who reseals, as recorded in the event (default: the OS user).")
    @click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
    def audit_reseal(legacy: bool, old_key_env: str | None, old_secret_key_env: str | None, by: str | None,
                     yes: bool) -> None:
        """Verify the chain as sealed now, then rewrite every hash under the desk's audit key and record
        an audit_chain_resealed event; all in one transaction, nothing changed if the check fails."""
        chosen = [name for name, given in (("--legacy", legacy), ("--old-key-env", old_key_env),
                                           ("--old-secret-key-env", old_secret_key_env)) if given]
        if len(chosen) != 1:
            raise click.UsageError("say what the chain is sealed with now: exactly one of --legacy, --old-key-env, "
                                   "--old-secret-key-env")
        source: AuditKey | Literal["unkeyed"] = UNKEYED
        for variable, derive in ((old_key_env, AuditKey.from_text), (old_secret_key_env, AuditKey.derived_from_secret_key)):
            if variable:
                value = os.environ.get(variable)
                if not value:
                    raise click.UsageError(f"environment variable {variable} is not set or empty")
                source = derive(value)
        services = _services()
        if source != UNKEYED and source == services.audit.key:
            raise click.UsageError("the old key is the desk's current audit key; nothing to rotate")
        if legacy and not yes:
            click.confirm("Sealing an unkeyed chain trusts its history as stored: anybody with write access to the "
                          "database could have rewritten it. Reseal it under the desk's audit key?", abort=True)
        actor = f"cli:{by or _os_user()}"
        try:
            report = run_unit_of_work(services, lambda: services.audit.reseal(actor, source))
        except ProcessdeskError as err:
            _fail(err)
            return
        finally:
            services.session.close()
        if report.already:
            click.echo(f"audit chain already sealed with key {report.key_id[:16]}: nothing to reseal")
            return
        click.echo(f"audit chain resealed: {report.events} events now sealed with key {report.key_id[:16]} "
                   f"(tip {report.tip}); recorded as audit_chain_resealed by {actor}")


def _os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in this environment
        return "unknown"
