"""Deploying BPMN/DMN/form files as process definition versions, and reading them back."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from app.clock import Clock
from app.db import serialize_writers
from app.engine import (
    ACCESS_SUFFIX,
    RECORD_SUFFIX,
    CompiledProcess,
    DefinitionError,
    ProcessLibrary,
    SourceFile,
    process_ids,
)
from app.engine.library import JsonFileError, load_json_file
from app.engine.xml import PROCESS_TAG, parse_xml
from app.errors import Conflict, NotFound, PayloadTooLarge, PermissionDenied, ValidationFailed
from app.models import (
    CatalogCategory,
    CatalogItem,
    DefinitionFile,
    Deployment,
    Group,
    InstanceStatus,
    ProcessDefinition,
    ProcessInstance,
    Role,
    User,
)

from . import policy
from .audit import AuditLog
from .content_texts import (
    CATALOG_SCOPE,
    TRANSLATIONS,
    catalog_texts,
    check_translation,
    is_translation,
    notice_params,
    notice_texts,
    parse_translation_name,
    process_texts,
)
from .forms import (
    START_FORM_SUFFIX,
    START_UI_SUFFIX,
    FormMessage,
    catalog_ui_form,
    check_form_definition,
    checked_start_form,
)
from .instructions import template_problem
from .records import check_mapping
from .start_rights import check_access
from .task_stats import DEFAULT_DAYS as DEFAULT_STAT_DAYS
from .task_stats import MAX_DAYS as MAX_STAT_DAYS
from .task_stats import task_statistics


def refused_definition(err: DefinitionError) -> ValidationFailed:
    """The engine's refusal of a deploy as the API answers it (422 ``invalid_definition``, the
    file, element and line in ``details``), its message a FormMessage when the engine gave its
    values (``error_type`` and ``parts``): a page says it in its own language."""
    message: str = err.message
    if err.error_type and err.parts:
        message = FormMessage(err.message, err.error_type, **err.parts)
    return ValidationFailed(message, code="invalid_definition", details=err.details())


def _json_or_none(content: bytes | None) -> Any:
    """A JSON file deployed before (and so checked then) or being checked now; None if absent or
    broken (the form checks name a broken one)."""
    if content is None:
        return None
    try:
        return load_json_file(content)
    except JsonFileError:
        return None


@dataclass(frozen=True)
class DeployedVersion:
    process_id: str
    version: int
    created: bool
    definition_id: int


@dataclass(frozen=True)
class SkippedFile:
    """An upload a ``keep_deployed`` deploy left out: some earlier deploy held its exact content."""

    name: str
    #: the desk holds other content under this name now (changed since, e.g. saved in the modeler)
    changed_since: bool
    #: for a diagram changed since: (process id, the newest version made from this content, the latest)
    versions: tuple[tuple[str, int, int], ...] = ()

    @property
    def note(self) -> str:
        if self.versions:
            return "; ".join(f"already deployed as version {version} of {process_id}; the latest is version {latest}"
                             for process_id, version, latest in self.versions)
        return "already deployed; the desk holds a newer content" if self.changed_since else "already deployed"


@dataclass(frozen=True)
class DeployResult:
    deployment_id: int | None
    processes: list[DeployedVersion]
    files: list[str]
    #: the uploads a ``keep_deployed`` deploy left out (their content was deployed before)
    skipped: list[SkippedFile] = field(default_factory=list)
    #: ``{process_id, version, lane}`` of each new version's lane that names no group: its tasks
    #: wait for admins until a group of that name exists (``lanes_without_group``)
    warnings: list[dict[str, Any]] = field(default_factory=list)


#: Built once: a reused statement keeps its cache key (starting an instance reads it every time).
_LATEST = select(ProcessDefinition).where(ProcessDefinition.process_id == bindparam("process_id"),
                                          ProcessDefinition.is_latest.is_(True))

#: The largest version number there can be: ``process_definition.version`` is an INTEGER column
#: (32 bits on PostgreSQL). A larger number asked for names no version, and is answered as such
#: instead of reaching the database (SQLite cannot even bind a number past 2**63 - 1).
MAX_VERSION = 2**31 - 1


def _checked_form(schema: dict[str, Any], ui: dict[str, Any] | None, name: str) -> None:
    """``check_form_definition``, its refusal coded ``invalid_definition`` like every other file's."""
    try:
        check_form_definition(schema, ui, name)
    except ValidationFailed as err:
        raise ValidationFailed(err.message, code="invalid_definition", details=err.details) from None


def _parsed_json(name: str, content: bytes | None) -> Any:
    """A form file's JSON; ValidationFailed naming the file and line when it does not parse."""
    try:
        return load_json_file(content or b"")
    except JsonFileError as err:
        raise ValidationFailed(f"{name} is {err.reason}" if err.reason.startswith("not ") else f"{name}: {err.reason}",
                               code="invalid_definition",
                               details={"file": name, **({"line": err.line} if err.line else {})}) from None


class DefinitionService:
    def __init__(self, session: Session, audit: AuditLog, clock: Clock, library: ProcessLibrary, max_bytes: int) -> None:
        self.session = session
        self.audit = audit
        self.clock = clock
        self.library = library
        self.max_bytes = max_bytes

    def deploy(self, actor: User | None, uploads: Sequence[tuple[str, bytes]], *,
               only_process: str | None = None, base_version: int | None = None,
               keep_deployed: bool = False) -> DeployResult:
        """Deploy all uploaded files or none of them.

        Uploads are merged over the files already deployed (by name), and every process in the
        result is compiled and checked. A process whose content changed gets the next version;
        the same content again keeps its version (idempotent).
        ``only_process``: the deploy comes from that process's page, so it may give a new version
        to that process alone; files that would create or change any other process (a shared
        DMN, another process's diagram) are refused, naming the file and the process.
        ``base_version`` (with ``only_process``): the latest version of that process the uploader's
        copy was made from (the editor's save). When a newer version was deployed since, and this
        deploy would change the process again, it would silently undo that newer version: Conflict
        instead, naming both versions and who deployed the newer one when. The same content as
        the latest version is no change and is not refused.
        ``keep_deployed`` (the folder deploy of `flask processes deploy`, run at every start): an
        upload whose exact bytes some earlier deploy already held under its name is left out (in
        ``DeployResult.skipped``), even when the desk has changed that file since: the shipped files
        seed the desk, they do not undo what was changed in it. Only content never deployed before
        is deployed. When every upload is left out nothing is stored, and the result names the
        latest version of each process, none created.
        Raises PermissionDenied, PayloadTooLarge, ValidationFailed (details name file/element/line),
        Conflict.
        """
        if actor is not None and not actor.has_role(Role.PROCESS_OWNER, Role.ADMIN):
            self.audit.refuse(actor, "deploy", reason="needs process_owner")
            raise PermissionDenied("deploying definitions needs the process_owner role")
        if not uploads:
            raise ValidationFailed("no files uploaded", details={"field": "files"})
        uploaded: dict[str, bytes] = {}
        for raw_name, content in uploads:
            name = raw_name.replace("\\", "/").rsplit("/", 1)[-1]
            if len(content) > self.max_bytes:
                raise PayloadTooLarge(
                    f"file {name} is larger than {self.max_bytes} bytes", details={"file": name, "limit": self.max_bytes}
                )
            if name in uploaded:
                raise ValidationFailed("the same file name was uploaded twice", details={"file": name})
            uploaded[name] = content

        if only_process is not None:
            self._check_own_diagram(only_process, uploaded)
        # Deploys take turns from here: a second one waits, then checks against what the first
        # stored (its base version, the next version number) instead of failing at the INSERT.
        serialize_writers(self.session, "definitions.deploy")
        skipped = self._deployed_before(uploaded) if keep_deployed else []
        for left_out in skipped:
            del uploaded[left_out.name]
        if not uploaded:
            latest = self.session.scalars(select(ProcessDefinition).where(ProcessDefinition.is_latest.is_(True))
                                          .order_by(ProcessDefinition.process_id)).all()
            return DeployResult(None, [DeployedVersion(d.process_id, d.version, False, d.id) for d in latest], [],
                                skipped)
        self._check_kept_processes(uploaded)
        stored = {f.name: f for f in self.session.scalars(select(DefinitionFile)).all()}
        merged = {name: f.content for name, f in stored.items()}
        merged.update(uploaded)
        try:
            compiled = self.library.compile([SourceFile(n, c) for n, c in sorted(merged.items())], deploying=set(uploaded))
        except DefinitionError as err:
            raise refused_definition(err) from None
        self._check_executable(compiled, uploaded)
        for process in compiled:
            self._check_forms(process)
            if process.record_mapping is not None:
                check_mapping(process.record_mapping, f"{process.process_id}.record.json")
        self._check_start_forms(merged, set(uploaded))
        self._check_loose_forms(compiled, merged, uploaded)
        if only_process is not None:
            self._check_scope(only_process, compiled, uploaded)
            if base_version is not None:
                self._check_base(only_process, compiled, base_version)
        for name in sorted(uploaded):
            if name.lower().endswith(ACCESS_SUFFIX):
                check_access(name, uploaded[name])  # who may start the process (start_rights)
        self._check_notice_templates(compiled, uploaded)
        self._check_translations(compiled, merged, uploaded)

        deployment = Deployment(
            deployed_at=self.clock.now(),
            deployed_by_id=actor.id if actor else None,
            files=[{"name": n, "sha256": hashlib.sha256(c).hexdigest()} for n, c in sorted(uploaded.items())],
            versions_created=[],
        )
        self.session.add(deployment)
        self.session.flush()
        for name, content in uploaded.items():
            digest = hashlib.sha256(content).hexdigest()
            row = stored.get(name)
            if row is None:
                self.session.add(DefinitionFile(name=name, kind=SourceFile(name, content).kind, content=content,
                                                sha256=digest, updated_at=self.clock.now(), deployment_id=deployment.id))
            elif row.sha256 != digest:
                row.content, row.sha256, row.updated_at, row.deployment_id = content, digest, self.clock.now(), deployment.id

        results: list[DeployedVersion] = []
        for process in compiled:
            results.append(self._store_version(process, deployment, actor))
        created = [{"process_id": r.process_id, "version": r.version} for r in results if r.created]
        deployment.versions_created = created
        self.session.flush()
        self.audit.record(
            "definitions_deployed",
            actor,
            payload={"deployment_id": deployment.id, "files": deployment.files, "versions_created": created},
            actor_name="cli" if actor is None else None,
        )
        warnings = [{"process_id": r.process_id, "version": r.version, "lane": lane}
                     for r in results if r.created
                     for lane in self.lanes_without_group(self.session.get(ProcessDefinition, r.definition_id))]
        return DeployResult(deployment.id, results, sorted(uploaded), skipped, warnings)

    def lanes_without_group(self, definition: ProcessDefinition | None) -> list[str]:
        """The lanes of ``definition`` whose name is no group's, spelled exactly (a task's lane is
        matched with its worker's group names as written: policy.is_candidate): nobody is a member,
        so their tasks wait for an admin (QA: a diagram with a lane "NoSuchTeam" deployed, and its
        tasks could be worked by nobody else). A warning, not a refusal: the group may be created
        after the diagram."""
        lanes = [str(lane) for lane in (definition.lanes if definition is not None else None) or []]
        if not lanes:
            return []
        known = set(self.session.scalars(select(Group.name).where(Group.name.in_(lanes))))
        return [lane for lane in lanes if lane not in known]

    def _check_kept_processes(self, uploaded: Mapping[str, bytes]) -> None:
        """An uploaded diagram that replaces a stored one (same name) must still define, as an
        executable process, every process whose latest version came from that file, unless another
        diagram of this deploy takes it over: uploads are merged over the stored files by name, so
        another process's diagram uploaded under that name would leave the process without its
        diagram (its translations and next deploys refused, its name then taken by the newcomer).
        Every deploy is checked (API, process list, modeler, folder deploy with or without
        ``--force``); from a process's page ``_check_own_diagram`` has said it first for that
        process. Raises ValidationFailed naming the file and the process."""
        diagrams = {name: content for name, content in uploaded.items() if SourceFile(name, content).kind == "bpmn"}
        if not diagrams:
            return
        held: dict[str, list[str]] = {}
        for process_id, filename in self.session.execute(
                select(ProcessDefinition.process_id, ProcessDefinition.filename)
                .where(ProcessDefinition.is_latest.is_(True), ProcessDefinition.filename.in_(sorted(diagrams)))
                .order_by(ProcessDefinition.process_id)).tuples():
            held.setdefault(filename, []).append(process_id)
        if not held:
            return
        defined: dict[str, dict[str, Any]] = {}  # file -> process id -> its <process> element
        for name, content in sorted(diagrams.items()):
            try:
                root = parse_xml(content, name)
            except DefinitionError:
                continue  # the compile names what is wrong with it
            defined[name] = {str(p.get("id")): p for p in root.iter(PROCESS_TAG) if p.get("id")}
        # as SpiffWorkflow reads it: executable unless isExecutable says otherwise
        executable = {pid for processes in defined.values() for pid, p in processes.items()
                      if p.get("isExecutable", "true") == "true"}
        for name in sorted(held):
            if name not in defined or not any(pid in executable for pid in defined[name]):
                continue  # not parsed, or no executable process at all: _check_executable says so
            for process_id in held[name]:
                if process_id in executable:
                    continue
                holds = [pid for pid in defined[name] if pid in executable][:5]
                said = ", ".join(f"'{pid}'" for pid in holds) or "no executable process"
                element = defined[name].get(process_id)
                how = ("defines it as not executable (isExecutable=\"false\")" if element is not None
                       else f"does not define it (it holds {said})")
                where = {"element_id": process_id, "line": element.sourceline} if element is not None else {}
                raise ValidationFailed(
                    f"{name} is the diagram of the process '{process_id}', but the uploaded {name} {how}: "
                    f"'{process_id}' would be left without its diagram. To deploy another process, upload it "
                    f"under another file name; to change '{process_id}', upload a diagram that still defines it",
                    code="invalid_definition",
                    details={"file": name, **where, "process_id": process_id, "holds": holds, "field": "files"})

    def _deployed_before(self, uploaded: Mapping[str, bytes]) -> list[SkippedFile]:
        """The uploads whose exact content (name and sha256, as each deployment records its files)
        some earlier deploy held, whatever the desk holds under that name now."""
        seen = {(f.get("name"), f.get("sha256")) for files in self.session.scalars(select(Deployment.files))
                for f in files or () if isinstance(f, dict)}
        current = dict(self.session.execute(select(DefinitionFile.name, DefinitionFile.sha256)).tuples().all())
        skipped: list[SkippedFile] = []
        for name, content in sorted(uploaded.items()):
            digest = hashlib.sha256(content).hexdigest()
            if (name, digest) not in seen:
                continue
            versions: tuple[tuple[str, int, int], ...] = ()
            changed_since = current.get(name) != digest
            if changed_since and SourceFile(name, content).kind == "bpmn":
                # a version keeps its diagram's text (decoded as the compile decodes it)
                text = content.decode("utf-8", errors="replace")
                made: dict[str, int] = {}
                for process_id, version, xml in self.session.execute(
                        select(ProcessDefinition.process_id, ProcessDefinition.version, ProcessDefinition.bpmn_xml)
                        .where(ProcessDefinition.filename == name)).tuples():
                    if xml == text:
                        made[process_id] = max(version, made.get(process_id, 0))
                latest = dict(self.session.execute(
                    select(ProcessDefinition.process_id, func.max(ProcessDefinition.version))
                    .where(ProcessDefinition.process_id.in_(made)).group_by(ProcessDefinition.process_id)).tuples().all())
                versions = tuple((pid, made[pid], latest[pid]) for pid in sorted(made))
            skipped.append(SkippedFile(name, changed_since, versions))
        return skipped

    @staticmethod
    def _check_executable(compiled: list[CompiledProcess], uploaded: Mapping[str, bytes]) -> None:
        """Refuse an uploaded diagram that holds no executable process (none at all, only
        ``isExecutable="false"`` ones, or a collaboration of such): it would be stored, yet start
        nothing and give no process a version. Raises ValidationFailed naming the file."""
        executable = {process.filename for process in compiled}
        for name in sorted(uploaded):
            if SourceFile(name, uploaded[name]).kind == "bpmn" and name not in executable:
                raise ValidationFailed(FormMessage(
                    f"no executable process in {name}: a diagram needs at least one process that is executable "
                    '(isExecutable="true", or no isExecutable attribute)', "no_executable_process", file=name),
                    code="invalid_definition", details={"file": name})

    @staticmethod
    def _check_start_forms(files: dict[str, bytes], uploaded: set[str]) -> None:
        """Check each start form that this deploy adds or changes (itself or its UI file)."""
        for name in sorted(files):
            if not name.endswith(START_FORM_SUFFIX) and not name.endswith(START_UI_SUFFIX):
                continue
            base = name.removesuffix(START_UI_SUFFIX).removesuffix(START_FORM_SUFFIX)
            form_name, ui_name = base + START_FORM_SUFFIX, base + START_UI_SUFFIX
            if name == ui_name and form_name not in files:
                raise ValidationFailed(f"{ui_name} has no start form {form_name} beside it",
                                       code="invalid_definition", details={"file": ui_name})
            if name == form_name and uploaded & {form_name, ui_name}:
                checked_start_form(form_name, files[form_name], ui_name, files.get(ui_name))

    def _check_scope(self, process_id: str, compiled: list[CompiledProcess], uploaded: dict[str, bytes]) -> None:
        """Refuse a deploy from ``process_id``'s page that is not about that process.

        Each uploaded file must be the process's: its diagram, a file it uses (called processes,
        forms, record mapping), one of its own start form, access or record files, or a DMN file.
        A file it shares with others (a form, a called process) may version them too, but a
        deploy that changes other processes and not this one (a DMN only they use) is refused,
        and so is one that would create a process.
        """
        own = next((p for p in compiled if p.process_id == process_id), None)
        mine = set(own.files_used) | {own.filename} if own is not None else set()
        mine |= {process_id + suffix for suffix in (START_FORM_SUFFIX, START_UI_SUFFIX, ACCESS_SUFFIX, RECORD_SUFFIX)}
        for name in sorted(uploaded):
            if is_translation(name) and parse_translation_name(name)[0] == process_id:
                continue  # its translations (content_texts)
            if name not in mine and not name.lower().endswith(".dmn"):
                raise ValidationFailed(
                    f"{name} is not a file of the process '{process_id}': deploy it from the process list",
                    code="invalid_definition", details={"file": name, "process_id": process_id, "field": "files"})
        hashes = dict(self.session.execute(
            select(ProcessDefinition.process_id, ProcessDefinition.content_hash)
            .where(ProcessDefinition.is_latest.is_(True))).tuples().all())
        changed = [p for p in compiled if not p.same_content(hashes.get(p.process_id))]
        this_changes = any(p.process_id == process_id for p in changed)
        dmn = sorted(name for name in uploaded if name.lower().endswith(".dmn"))
        for process in changed:
            if process.process_id == process_id:
                continue
            new = process.process_id not in hashes
            if not new and (this_changes or not dmn):
                continue  # a file both use, or no upload of this page's made the difference
            blamed = process.filename if process.filename in uploaded else (dmn or sorted(uploaded))[0]
            raise ValidationFailed(
                f"{blamed} would {'create' if new else 'change'} the process '{process.process_id}', "
                f"not '{process_id}': deploy it from the process list",
                code="invalid_definition",
                details={"file": blamed, "process_id": process.process_id, "field": "files"})

    def _check_own_diagram(self, process_id: str, uploaded: Mapping[str, bytes]) -> None:
        """From a process's page, its own diagram file (the one its latest version came from) must
        still hold that process: the editor's save sends whatever XML it has under that name, and
        another process's diagram there would otherwise be refused as a duplicate of that other
        process, which tells the uploader nothing. Raises ValidationFailed naming the file."""
        latest = self.session.scalar(_LATEST, {"process_id": process_id})
        self._check_elsewhere(process_id, {n: c for n, c in uploaded.items() if latest is None or n != latest.filename})
        if latest is None or latest.filename not in uploaded:
            return
        try:
            held = process_ids(uploaded[latest.filename], latest.filename)
        except DefinitionError as err:
            raise refused_definition(err) from None
        if process_id not in held:
            holds = ", ".join(f"'{pid}'" for pid in held[:5]) or "no process"
            raise ValidationFailed(
                f"{latest.filename} is the diagram of the process '{process_id}', but this one holds {holds}: "
                "open that process's page to change it, or deploy it from the process list",
                code="invalid_definition",
                details={"file": latest.filename, "process_id": process_id, "holds": held[:5], "field": "files"})

    def _check_elsewhere(self, process_id: str, uploaded: Mapping[str, bytes]) -> None:
        """From a process's page, a diagram under another name that holds some other deployed
        process (a copy of another process's diagram, saved under a new name) is that process's
        business: say so, rather than let the compile refuse it as a duplicate process ID."""
        for name in sorted(uploaded):
            if SourceFile(name, uploaded[name]).kind != "bpmn":
                continue
            try:
                held = process_ids(uploaded[name], name)
            except DefinitionError:
                continue  # the compile names what is wrong with it
            for other in held:
                if other == process_id:
                    continue
                found = self.session.scalar(_LATEST, {"process_id": other})
                if found is not None and found.filename != name:
                    raise ValidationFailed(
                        f"{name} holds the process '{other}', deployed from {found.filename}, not this page's "
                        f"process '{process_id}': open that process's page to change it, or deploy it from the "
                        "process list", code="invalid_definition",
                        details={"file": name, "process_id": process_id, "holds": [other], "field": "files"})

    def _check_base(self, process_id: str, compiled: list[CompiledProcess], base_version: int) -> None:
        """Refuse a change of ``process_id`` made from ``base_version`` when that is no longer its
        latest version (see ``deploy``)."""
        own = next((p for p in compiled if p.process_id == process_id), None)
        latest = self.session.scalar(_LATEST, {"process_id": process_id})
        if own is None or latest is None or latest.version == base_version or own.same_content(latest.content_hash):
            return
        by = self.session.scalar(select(User.username).where(User.id == latest.deployed_by_id)) \
            if latest.deployed_by_id is not None else None
        when = latest.deployed_at.isoformat() if latest.deployed_at else None
        raise Conflict(
            f"process '{process_id}' was changed meanwhile: this diagram was made from version {base_version}, "
            f"but version {latest.version} was deployed since" + (f" by {by}" if by else "")
            + (f" at {when}" if when else ""),
            details={"process_id": process_id, "base_version": base_version, "latest_version": latest.version,
                     "deployed_by": by, "deployed_at": when},
        )

    @staticmethod
    def _check_notice_templates(compiled: list[CompiledProcess], uploaded: Mapping[str, bytes]) -> None:
        """A ``notify`` step's subject or body written as a template (content_texts.NOTICE_PARAMS) must
        be one: refused at deploy rather than failing the step. Only in the diagrams being deployed:
        one stored before this check existed must not block the deploys of everything else."""
        for process in compiled:
            if process.filename not in uploaded:
                continue
            for found in notice_params(process.literal_params):
                problem = template_problem(found.text)
                if problem is not None:
                    raise ValidationFailed(
                        f"{process.filename}: the {found.parameter} of '{found.element_id}' is no template: {problem}",
                        code="invalid_definition",
                        details={"file": process.filename, "element_id": found.element_id, "field": found.parameter})

    def _check_translations(self, compiled: list[CompiledProcess], files: Mapping[str, bytes],
                            uploaded: Mapping[str, bytes]) -> None:
        """Check each uploaded translation file against the content of its scope as this deploy
        leaves it: a process (its name, tasks, forms and start form) or the catalog (content_texts).
        Raises ValidationFailed naming the file (and the entry at fault)."""
        by_id = {process.process_id: process for process in compiled}
        for name in sorted(n for n in uploaded if is_translation(n)):
            scope, _locale = parse_translation_name(name)
            process = by_id.get(scope)
            if process is not None:
                starts = [_json_or_none(files.get(scope + suffix)) for suffix in (START_FORM_SUFFIX, START_UI_SUFFIX)]
                sources = process_texts(process.name, (t.name for t in process.user_tasks),
                                        [*process.forms.values(), *starts], process.element_names,
                                        process.task_texts, notice_texts(process.literal_params))
            elif scope == CATALOG_SCOPE:
                sources = self._catalog_texts(files)
            else:
                raise ValidationFailed(
                    f"{name}: no process '{scope}' is deployed or uploaded (a translation file is named "
                    f"<process_id>.<locale>.i18n.json, or {CATALOG_SCOPE}.<locale>.i18n.json for the catalog)",
                    code="invalid_definition", details={"file": name})
            entries = check_translation(name, uploaded[name], sources)
            if process is not None:
                self._check_translated_templates(name, entries, notice_texts(process.literal_params))

    @staticmethod
    def _check_translated_templates(name: str, entries: Mapping[str, str], templates: set[str]) -> None:
        """The translation of a notice template must be a template too (else each reader would get the
        English anyway): refused naming the entry."""
        for source in sorted(templates & entries.keys()):
            problem = template_problem(entries[source])
            if problem is not None:
                raise ValidationFailed(f"{name}: the translation of {source[:80]!r} is no template: {problem}",
                                       code="invalid_definition", details={"file": name, "entry": source[:200]})

    def _catalog_texts(self, files: Mapping[str, bytes]) -> set[str]:
        items = list(self.session.execute(select(CatalogItem.name, CatalogItem.description, CatalogItem.form)).tuples())
        forms = []
        for _name, _description, form in items:
            if form:
                ui_form = catalog_ui_form(form)
                forms += [_json_or_none(files.get(form)), _json_or_none(files.get(ui_form) if ui_form else None)]
        return catalog_texts(self.session.scalars(select(CatalogCategory.name)),
                             ((name, description) for name, description, _form in items), forms)

    def translations(self, scope: str, locale: str) -> Mapping[str, str]:
        """The deployed translation of ``scope`` (a process id, or ``catalog``) into ``locale``:
        source text -> translation; empty when there is none."""
        return TRANSLATIONS.get(self.session, scope, locale)

    def _check_forms(self, process: CompiledProcess) -> None:
        ui_names = {t.ui_form for t in process.user_tasks if t.ui_form}
        for task in process.user_tasks:
            if not task.form:
                continue
            ui = process.forms.get(task.ui_form) if task.ui_form else None
            _checked_form(process.forms[task.form], ui, task.form)
        for name in ui_names - {t.form for t in process.user_tasks}:
            if not isinstance(process.forms.get(name), dict):
                raise ValidationFailed("UI schema must be a JSON object", code="invalid_definition", details={"file": name})

    @staticmethod
    def _check_loose_forms(compiled: list[CompiledProcess], files: Mapping[str, bytes], uploaded: Mapping[str, bytes]) -> None:
        """Check the uploaded form files no diagram of this deploy uses (a catalog item's request
        form, or a form deployed ahead of the diagram that will name it), as every other file is
        checked: a broken one would be stored and only refused later, by whatever first uses it.
        A ``.ui.json`` is checked with the form beside it (``x.json`` for ``x.ui.json``)."""
        used = {name for process in compiled for task in process.user_tasks for name in (task.form, task.ui_form) if name}
        for name in sorted(uploaded):
            if SourceFile(name, uploaded[name]).kind != "form" or name in used \
                    or name.endswith(START_FORM_SUFFIX) or name.endswith(START_UI_SUFFIX):
                continue
            form_name = name[:-len(".ui.json")] + ".json" if name.endswith(".ui.json") else name
            ui_name = catalog_ui_form(form_name)
            schema = _parsed_json(form_name, files.get(form_name)) if form_name in files else None
            ui = _parsed_json(ui_name, files.get(ui_name)) if ui_name and ui_name in files else None
            if name == ui_name or schema is None:
                if not isinstance(ui, dict):
                    raise ValidationFailed(f"{name}: a UI schema must be a JSON object", code="invalid_definition",
                                           details={"file": name})
                if schema is None:
                    continue  # a UI schema deployed ahead of its form: checked with it
            if not isinstance(schema, dict):
                raise ValidationFailed(f"{form_name}: a form must be a JSON object", code="invalid_definition",
                                       details={"file": form_name})
            _checked_form(schema, ui, form_name)

    def _store_version(self, process: CompiledProcess, deployment: Deployment, actor: User | None) -> DeployedVersion:
        latest = self.session.scalar(
            select(ProcessDefinition)
            .where(ProcessDefinition.process_id == process.process_id)
            .order_by(ProcessDefinition.version.desc())
            .limit(1)
        )
        if latest is not None and process.same_content(latest.content_hash):
            return DeployedVersion(process.process_id, latest.version, False, latest.id)
        version = (latest.version + 1) if latest else 1
        self.session.execute(
            update(ProcessDefinition)
            .where(ProcessDefinition.process_id == process.process_id, ProcessDefinition.is_latest.is_(True))
            .values(is_latest=False)
        )
        row = ProcessDefinition(
            process_id=process.process_id,
            version=version,
            name=process.name,
            content_hash=process.content_hash,
            filename=process.filename,
            bpmn_xml=process.bpmn_xml,
            spec_json=process.spec_json,
            forms=process.forms,
            user_tasks=[t.__dict__ for t in process.user_tasks],
            lanes=list(process.lanes),
            files_used=list(process.files_used),
            record_mapping=process.record_mapping,
            deployment_id=deployment.id,
            deployed_by_id=actor.id if actor else None,
            deployed_at=self.clock.now(),
            is_latest=True,
        )
        self.session.add(row)
        self.session.flush()
        return DeployedVersion(process.process_id, version, True, row.id)

    # -- reading ------------------------------------------------------------------------------

    def require_reader(self, user: User, process_id: str | None = None) -> None:
        """PermissionDenied (and a refusal in the audit chain) unless ``user`` may read process
        definitions beyond their names (``policy.may_read_definitions``): XML, versions, counts."""
        if not policy.may_read_definitions(user):
            where: dict[str, Any] = {} if process_id is None else {"process_id": process_id}
            self.audit.refuse(user, "read_definition", reason="needs a staff role", **where)
            raise PermissionDenied("reading process definitions needs one of the roles "
                                   + ", ".join(str(r) for r in policy.DEFINITION_READER_ROLES), details=where or None)

    def task_statistics(self, user: User, process_id: str, days: int = DEFAULT_STAT_DAYS) -> dict[str, Any]:
        """Where ``process_id``'s work waits (app/services/task_stats.py), for a reader of
        definitions (``require_reader``); NotFound for a process not deployed, ValidationFailed
        naming ``days`` outside 1 to ``MAX_STAT_DAYS``."""
        self.require_reader(user, process_id)
        if not 1 <= days <= MAX_STAT_DAYS:
            raise ValidationFailed(f"days must be 1 to {MAX_STAT_DAYS}", details={"fields": {"days": [
                f"must be between 1 and {MAX_STAT_DAYS}"]}})
        latest = self.latest(process_id)
        return task_statistics(self.session, process_id, list(latest.user_tasks or []), self.clock.now(), days)

    def versions_for(self, user: User, process_id: str) -> list[ProcessDefinition]:
        """``versions`` for a reader of definitions (``require_reader``)."""
        self.require_reader(user, process_id)
        return self.versions(process_id)

    def version_for(self, user: User, process_id: str, version: int | None) -> ProcessDefinition:
        """``version`` for a reader of definitions (``require_reader``)."""
        self.require_reader(user, process_id)
        return self.version(process_id, version)

    def latest(self, process_id: str) -> ProcessDefinition:
        row = self.session.scalar(_LATEST, {"process_id": process_id})
        if row is None:
            raise NotFound(f"no process definition '{process_id}'", details={"process_id": process_id})
        return row

    def version(self, process_id: str, version: int | None) -> ProcessDefinition:
        """Version ``version`` of ``process_id`` (None: the latest). Raises NotFound."""
        if version is None:
            return self.latest(process_id)
        row = None if not 1 <= version <= MAX_VERSION else self.session.scalar(
            select(ProcessDefinition).where(ProcessDefinition.process_id == process_id, ProcessDefinition.version == version)
        )
        if row is None:
            raise NotFound(f"process '{process_id}' has no version {version}", details={"process_id": process_id, "version": version})
        return row

    def versions(self, process_id: str) -> list[ProcessDefinition]:
        rows = list(self.session.scalars(
            select(ProcessDefinition).where(ProcessDefinition.process_id == process_id).order_by(ProcessDefinition.version)
        ))
        if not rows:
            raise NotFound(f"no process definition '{process_id}'", details={"process_id": process_id})
        return rows

    def running_counts(self, process_id: str, statuses: tuple[str, ...] = (InstanceStatus.RUNNING,)) -> dict[int, int]:
        """Running instances (or those in ``statuses``) per version of ``process_id``."""
        rows = self.session.execute(
            select(ProcessInstance.version, func.count())
            .where(ProcessInstance.process_id == process_id, ProcessInstance.status.in_(statuses))
            .group_by(ProcessInstance.version)
        ).all()
        return {int(version): int(count) for version, count in rows}

    def list_latest(self, page: int, per_page: int) -> tuple[list[dict[str, Any]], int]:
        counts = (
            select(ProcessDefinition.process_id, func.count().label("n"))
            .group_by(ProcessDefinition.process_id)
            .subquery()
        )
        base = (
            select(ProcessDefinition, counts.c.n)
            .join(counts, counts.c.process_id == ProcessDefinition.process_id)
            .where(ProcessDefinition.is_latest.is_(True))
        )
        total = self.session.scalar(select(func.count()).select_from(base.subquery())) or 0
        rows = self.session.execute(
            base.order_by(ProcessDefinition.process_id).offset((page - 1) * per_page).limit(per_page)
        ).all()
        return [{"definition": d, "versions": n} for d, n in rows], total
