"""User administration: users, groups and their members.

Admins and auditors read; only admins change anything (others get 403, audited as a refused
attempt). Usernames and group names are matched in any letter case (/groups/servicedesk is
ServiceDesk; answers give the group's own spelling). No answer carries a password hash.

Everyone signed in reads their own profile at ``/users/me``, changes their own password at
``/users/me/password``, lists their live API tokens at ``/users/me/tokens`` and revokes one with
``DELETE /users/me/tokens/<id>`` (the token in use too: the API's sign-out). An admin does the same
for anyone at ``/users/<username>/tokens`` (auditors read the list); a token id of another user
than the one addressed answers 404. ``me`` there always means the caller: were a user named "me", an admin
reaches them in any other letter case (``/users/Me``), as names ignore case and the address
``me`` is matched exactly.

Deactivating a user answers with the tasks still assigned to them by name (``assigned_tasks``):
nobody else may take those until an admin reassigns each one (POST /api/v1/tasks/<id>/reassign).
"""

from __future__ import annotations

from typing import Any

from flask import url_for
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from app.errors import ValidationFailed
from app.models import Group, HumanTask, User
from app.schemas import TokenListOut
from app.schemas.users import (
    AwayIn,
    AwayOut,
    DeactivationOut,
    GroupIn,
    GroupListOut,
    GroupOut,
    GroupPatch,
    GroupQuery,
    MemberIn,
    OwnPasswordIn,
    OwnPasswordOut,
    OwnProfilePatch,
    PasswordIn,
    UserIn,
    UserListOut,
    UserOut,
    UserPatch,
    UserQuery,
)
from app.services.users import UserService
from app.web.ratelimit import client_address, login_retry_after, note_login_failure, note_login_success

from . import RoleCheck, checked_first, current_user, page_args, services, unit_of_work
from .auth import _too_many_attempts

blp = Blueprint("users", __name__, url_prefix="/api/v1", description="User administration: users and groups")


def _admin(action: str) -> RoleCheck:
    """The service's admin check for ``action``, run before the arguments are parsed."""
    return lambda svc, user: svc.users.require_admin(user, action)


def _reader(action: str) -> RoleCheck:
    """The service's directory-reader check for ``action``, run before the arguments are parsed."""
    return lambda svc, user: svc.users.require_reader(user, action)
SECURITY: list[dict[str, list[str]]] = [{"bearer": []}]


class WaitingTaskOut(Schema):
    id = fields.Integer()
    name = fields.String()
    bpmn_id = fields.String()
    instance_id = fields.Integer()
    record = fields.String(allow_none=True, metadata={"description": "the number of the task's record, if any"})
    href = fields.String(metadata={"description": "the task in the API"})
    reassign = fields.String(metadata={"description": "where an admin POSTs {\"username\": ...} to hand it on"})


class UserDetailOut(UserOut):
    assigned_task_count = fields.Integer(metadata={
        "description": "an inactive user only: how many ready tasks wait on them, assigned to them by name"})
    assigned_tasks = fields.List(fields.Nested(WaitingTaskOut), metadata={
        "description": "an inactive user only: those tasks; nobody else may take them until an admin "
                       "reassigns each one"})


class DeactivatedOut(DeactivationOut, UserDetailOut):
    pass


def _group_out(group: Group) -> dict[str, Any]:
    out = UserService.group_dict(group, members=True)
    out["member_count"] = sum(1 for m in out["members"] if m["active"])
    return out


@blp.route("/users")
class UsersView(MethodView):
    @checked_first(_reader("list_users"))
    @blp.arguments(UserQuery, location="query")
    @blp.response(200, UserListOut)
    @blp.doc(security=SECURITY)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Search users (admins and auditors): words in username, display name or email; filter by
        role, group, active, out of office now (``away``) and two-step sign-in (``two_step``); paged, by
        username. Each says whether the user signs in with a code (``two_step``)."""
        user = current_user()
        svc = services()
        page, per_page = page_args(args)
        rows, total = unit_of_work(lambda: svc.users.list_users(
            user, q=args.get("q"), role=args.get("role"), group=args.get("group"), active=args.get("active"),
            away=args.get("away"), two_step=args.get("two_step"), page=page, per_page=per_page))
        on = unit_of_work(lambda: svc.two_step.on_among(u.id for u in rows))
        return {"page": page, "per_page": per_page, "total": total, "total_exact": True,
                "items": [{**UserService.user_dict(u), "two_step": u.id in on} for u in rows]}

    @checked_first(_admin("create_user"))
    @blp.arguments(UserIn)
    @blp.response(201, UserOut)
    @blp.alt_response(409, description="The username is taken, in any letter case (error user_exists)")
    @blp.doc(security=SECURITY)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create a user (admin). The groups must exist; the manager is a username."""
        user = current_user()
        svc = services()
        created = unit_of_work(lambda: svc.users.create_user(
            body["username"], body["password"], groups=body.get("groups") or (), roles=body.get("roles") or (),
            display_name=body.get("display_name"), email=body.get("email"), manager=body.get("manager"),
            locale=body.get("locale"), actor=user))
        return UserService.user_dict(created)


@blp.route("/users/me")
class MeView(MethodView):
    @blp.response(200, UserOut)
    @blp.doc(security=SECURITY)
    def get(self) -> dict[str, Any]:
        """The caller's own profile: name, email, roles, groups, manager, language."""
        user = current_user()
        return unit_of_work(lambda: UserService.user_dict(user))

    @blp.arguments(OwnProfilePatch)
    @blp.response(200, UserOut)
    @blp.doc(security=SECURITY)
    def patch(self, body: dict[str, Any]) -> dict[str, Any]:
        """Choose the caller's own language (``locale``: en, zh_CN, or null for none): the pages'
        after their next sign-in, and the notifications they are sent from now on (422 naming
        ``locale`` for another)."""
        user = current_user()
        svc = services()
        return unit_of_work(lambda: UserService.user_dict(svc.users.set_locale(svc.session.merge(user), body["locale"])))


@blp.route("/users/me/password")
class MyPasswordView(MethodView):
    @blp.arguments(OwnPasswordIn)
    @blp.response(200, OwnPasswordOut)
    @blp.alt_response(429, description="Too many failed attempts (sign-ins and wrong current passwords, "
                                       "counted together): refused until Retry-After seconds have passed")
    @blp.doc(security=SECURITY)
    def post(self, body: dict[str, Any]) -> Any:
        """Change the caller's own password, naming the current one (422 names ``current_password``
        or ``new_password``). Every API token and web session of the caller ends, the token sent
        included: the answer carries a fresh token to use from now on. A wrong current password
        counts against the sign-in limit of the caller's name and address (429 when reached). A
        caller whose role requires two-step sign-in and who has not set it up is refused (403
        ``two_step_setup_required``): set it up first, then change the password."""
        user = current_user()
        svc = services()
        address = client_address()
        now = svc.runtime.clock.now().timestamp()
        wait = login_retry_after(user.username, address, now)
        if wait:
            return _too_many_attempts(wait)

        def change() -> dict[str, Any]:
            # the answer's fresh token must not carry past the requirement those tokens were issued before
            svc.two_step.require_set_up(user, "change_own_password")
            changed = svc.users.change_own_password(user, body["current_password"], body["new_password"])
            return {**svc.users.issue_token(changed, address=address), "user": UserService.user_dict(changed)}

        try:
            answer = unit_of_work(change)
        except ValidationFailed as err:
            if "current_password" in (err.details.get("fields") or {}):
                note_login_failure(user.username, address, now)
            raise
        note_login_success(user.username)
        return answer


@blp.route("/users/<string:username>/tokens")
class UserTokensView(MethodView):
    @blp.response(200, TokenListOut)
    @blp.doc(security=SECURITY)
    def get(self, username: str) -> dict[str, Any]:
        """The live API tokens (not revoked, not expired) of ``me`` (the caller) or, for admins and
        auditors, of any user, newest first: id, label, when made, last used (to the minute) and
        expiring. Never a token's secret."""
        user = current_user()
        svc = services()
        return unit_of_work(lambda: {"items": [UserService.token_dict(row, user.current_token_id)
                                               for row in svc.users.list_tokens(user, username)]})


@blp.route("/users/<string:username>/tokens/<int:token_id>")
class UserTokenView(MethodView):
    @blp.response(204)
    @blp.doc(security=SECURITY)
    def delete(self, username: str, token_id: int) -> None:
        """Revoke one live API token of ``me`` (the caller, the token in use included) or, for admins,
        of any user: it answers 401 from its next request on. Audited. 404 for an id that is no
        live token of that user."""
        user = current_user()
        svc = services()
        unit_of_work(lambda: svc.users.revoke_token(user, username, token_id))


@blp.route("/users/<string:username>/away")
class AwayView(MethodView):
    @blp.response(200, AwayOut)
    @blp.doc(security=SECURITY)
    def get(self, username: str) -> dict[str, Any]:
        """The out-of-office absence of ``me`` (the caller) or, for admins and auditors, of anyone:
        from, until, the delegate, whether it holds now, the open tasks handed to the delegate and
        those kept with the user (each with the reason)."""
        user = current_user()
        svc = services()
        return unit_of_work(lambda: svc.away.described(svc.away.owner(user, username, "read_away", change=False)))

    @blp.arguments(AwayIn)
    @blp.response(200, AwayOut)
    @blp.doc(security=SECURITY)
    def put(self, body: dict[str, Any], username: str) -> dict[str, Any]:
        """Set (or replace) the absence of ``me`` or, for admins, of anyone: from ``from`` (now unless
        later) until ``until``, the tasks assigned to the user by name go to ``delegate``; those open
        now move at once, and back when it ends. 422 naming ``delegate``, ``from`` or ``until``."""
        user = current_user()
        svc = services()
        return unit_of_work(lambda: svc.away.described(svc.away.set_away(user, username, body)))

    @blp.response(200, AwayOut)
    @blp.doc(security=SECURITY)
    def delete(self, username: str) -> dict[str, Any]:
        """End the absence of ``me`` or, for admins, of anyone now: the open tasks handed on come back."""
        user = current_user()
        svc = services()
        return unit_of_work(lambda: svc.away.described(svc.away.clear(user, username)))


@blp.route("/users/<string:username>")
class UserView(MethodView):
    @blp.response(200, UserDetailOut)
    @blp.doc(security=SECURITY)
    def get(self, username: str) -> dict[str, Any]:
        """One user (admins and auditors), by username in any letter case; an inactive one with the
        tasks still assigned to them by name (``assigned_tasks``)."""
        user = current_user()
        svc = services()
        return unit_of_work(lambda: _user_detail(user, svc.users.get_user(user, username)))

    @checked_first(_admin("update_user"))
    @blp.arguments(UserPatch)
    @blp.response(200, UserDetailOut)
    @blp.alt_response(409, description="The change would leave no active admin (last_admin), or deactivates "
                                       "the caller (own_account)")
    @blp.doc(security=SECURITY)
    def patch(self, body: dict[str, Any], username: str) -> dict[str, Any]:
        """Change a user's display name, email, roles, groups (whole lists), manager, language
        (``locale``: en, zh_CN, or null for the site's default) or active flag (admin). Fields not
        sent stay, the password always. Setting
        ``active`` to false deactivates as POST .../deactivate does, and the answer lists the tasks
        still assigned to the user by name (``assigned_tasks``)."""
        user = current_user()
        svc = services()
        return unit_of_work(lambda: _user_detail(user, svc.users.update_user(user, username, body)))


def _user_detail(actor: User, found: User, waiting: list[HumanTask] | None = None) -> dict[str, Any]:
    """One user as the single-user answers give them: an inactive user with the tasks that wait on
    them by name (``waiting`` when the caller already has them), so that whoever reads or
    deactivates a leaver, by whichever route, sees what needs handing on."""
    svc = services()
    out = {**UserService.user_dict(found), "two_step": svc.two_step.enabled(found)}
    if found.active:
        return out
    tasks = svc.users.tasks_waiting_on(actor, found.username) if waiting is None else waiting
    refs = [{**ref, "href": url_for("tasks.TaskView", task_id=ref["id"]),
             "reassign": url_for("tasks.ReassignView", task_id=ref["id"])} for ref in svc.users.task_refs(tasks)]
    return {**out, "assigned_task_count": len(refs), "assigned_tasks": refs}


def _deactivated(actor: User, username: str) -> dict[str, Any]:
    svc = services()

    def deactivate() -> dict[str, Any]:
        done = svc.users.deactivate_user(actor, username)
        return {**_user_detail(actor, done.user, done.assigned), "released_tasks": [t.id for t in done.released]}

    return unit_of_work(deactivate)


@blp.route("/users/<string:username>/deactivate")
class DeactivateView(MethodView):
    @blp.response(200, DeactivatedOut)
    @blp.alt_response(409, description="The caller's own account (own_account) or the last active admin (last_admin)")
    @blp.doc(security=SECURITY)
    def post(self, username: str) -> dict[str, Any]:
        """Deactivate a leaver (admin): no more sign-ins, their API tokens and web sessions end, and
        the open tasks they had claimed go back to their queues. Their history stays. The answer
        counts and lists the ready tasks assigned to them by name (``assigned_tasks``), which wait
        on them until an admin reassigns each (to a member of its group, or anyone for a task
        outside any lane). Deactivating an inactive user changes nothing and lists them again."""
        return _deactivated(current_user(), username)


@blp.route("/users/<string:username>/reactivate")
class ReactivateView(MethodView):
    @blp.response(200, UserOut)
    @blp.doc(security=SECURITY)
    def post(self, username: str) -> dict[str, Any]:
        """Let a deactivated user sign in again (admin); tokens issued before stay revoked."""
        user = current_user()
        svc = services()
        return UserService.user_dict(unit_of_work(lambda: svc.users.reactivate_user(user, username)))


@blp.route("/users/<string:username>/password")
class PasswordView(MethodView):
    @checked_first(_admin("reset_password"))
    @blp.arguments(PasswordIn)
    @blp.response(200, UserOut)
    @blp.doc(security=SECURITY)
    def post(self, body: dict[str, Any], username: str) -> dict[str, Any]:
        """Set a new password (admin): the user's API tokens and web sessions end."""
        user = current_user()
        svc = services()
        return UserService.user_dict(unit_of_work(lambda: svc.users.reset_password(user, username, body["password"])))


@blp.route("/groups")
class GroupsView(MethodView):
    @checked_first(_reader("list_groups"))
    @blp.arguments(GroupQuery, location="query")
    @blp.response(200, GroupListOut)
    @blp.doc(security=SECURITY)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Every group with its active member count (admins and auditors), by name."""
        user = current_user()
        svc = services()
        rows = unit_of_work(lambda: svc.users.list_groups(user, args.get("q")))
        return {"items": [{**UserService.group_dict(g), "member_count": count} for g, count in rows]}

    @checked_first(_admin("create_group"))
    @blp.arguments(GroupIn)
    @blp.response(201, GroupOut)
    @blp.alt_response(409, description="A group of that name exists, in any letter case (group_exists)")
    @blp.doc(security=SECURITY)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create a group (admin); its name is what a diagram's lane says."""
        user = current_user()
        svc = services()
        return _group_out(unit_of_work(lambda: svc.users.create_group(
            user, body["name"], description=body.get("description"), manager=body.get("manager"))))


@blp.route("/groups/<string:name>")
class GroupView(MethodView):
    @blp.response(200, GroupOut)
    @blp.doc(security=SECURITY)
    def get(self, name: str) -> dict[str, Any]:
        """A group with its members (admins and auditors), by name in any letter case."""
        user = current_user()
        svc = services()
        return _group_out(unit_of_work(lambda: svc.users.get_group(user, name)))

    @checked_first(_admin("update_group"))
    @blp.arguments(GroupPatch)
    @blp.response(200, GroupOut)
    @blp.doc(security=SECURITY)
    def patch(self, body: dict[str, Any], name: str) -> dict[str, Any]:
        """Change a group's description or manager (admin). Its name stays: the lanes say it."""
        user = current_user()
        svc = services()
        return _group_out(unit_of_work(lambda: svc.users.update_group(user, name, body)))


@blp.route("/groups/<string:name>/members")
class MembersView(MethodView):
    @checked_first(_admin("add_group_member"))
    @blp.arguments(MemberIn)
    @blp.response(200, GroupOut)
    @blp.doc(security=SECURITY)
    def post(self, body: dict[str, Any], name: str) -> dict[str, Any]:
        """Add a user to the group (admin); nothing if they are in it."""
        user = current_user()
        svc = services()
        return _group_out(unit_of_work(lambda: svc.users.add_member(user, name, body["username"])))


@blp.route("/groups/<string:name>/members/<string:username>")
class MemberView(MethodView):
    @blp.response(200, GroupOut)
    @blp.doc(security=SECURITY)
    def delete(self, name: str, username: str) -> dict[str, Any]:
        """Take a user out of the group (admin); nothing if they are not in it."""
        user = current_user()
        svc = services()
        return _group_out(unit_of_work(lambda: svc.users.remove_member(user, name, username)))
