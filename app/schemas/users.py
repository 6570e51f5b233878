"""Shapes of the user administration API (app/api/users.py): users, groups, their members.

Shape only: the rules (who may, which names are taken, the last admin) are the user service's.
No response carries a password or its hash: passwords are load-only.
"""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from app.languages import LANGUAGES
from app.models import Role
from app.schemas import JsonBoolean, Length, PageOut, PageQuery, TokenOut, _Body, _In
from app.services.users import MAX_PASSWORD

ROLES = [role.value for role in Role]


#: The user's language: the pages' (unless they switch) and the notices' they are sent.
LOCALE = fields.String(allow_none=True, validate=validate.OneOf(list(LANGUAGES)), metadata={
    "description": "the user's language, for the pages and the notifications they are sent; "
                   "null: the pages follow the browser, notifications the site's default language"})


class UserQuery(PageQuery):
    q = fields.String(load_default=None, validate=Length(max=200),
                      metadata={"description": "words in the username, display name or email (any case)"})
    role = fields.String(load_default=None, validate=validate.OneOf(ROLES))
    group = fields.String(load_default=None, validate=Length(min=1, max=128),
                          metadata={"description": "members of this group (its exact name)"})
    active = fields.Boolean(load_default=None, metadata={"description": "true: active users only; false: deactivated only"})
    away = fields.Boolean(load_default=None, metadata={
        "description": "true: only the users out of office now (an absence that holds now); false: only the others"})
    two_step = fields.Boolean(load_default=None, metadata={
        "description": "true: only the users who sign in with a code of an authenticator app; false: only the others"})


class UserOut(Schema):
    username = fields.String()
    display_name = fields.String()
    email = fields.String(allow_none=True)
    active = fields.Boolean()
    roles = fields.List(fields.String())
    groups = fields.List(fields.String())
    manager = fields.String(allow_none=True, metadata={"description": "the line manager's username"})
    locale = fields.String(allow_none=True, metadata={
        "description": "the language the user chose (pages and notifications); null: none chosen"})
    created_at = fields.DateTime()
    away = fields.Nested(lambda: UserAwayOut(), allow_none=True, metadata={
        "description": "the user's absence (out of office), now or to come; null: none set"})
    two_step = fields.Boolean(metadata={
        "description": "the user signs in with a code of an authenticator app (in the directory's answers: "
                       "the list and one user)"})


class UserAwayOut(Schema):
    starts = fields.DateTime(data_key="from", attribute="from")
    until = fields.DateTime()
    delegate = fields.String(allow_none=True, metadata={"description": "who takes the tasks assigned to them by name"})


class UserListOut(PageOut):
    items = fields.List(fields.Nested(UserOut))


class UserPatch(_Body):
    display_name = fields.String(validate=Length(min=1, max=255))
    email = fields.String(allow_none=True, validate=Length(max=255), metadata={"description": "null or '' clears it"})
    roles = fields.List(fields.String(validate=validate.OneOf(ROLES)), validate=Length(max=len(ROLES)),
                        metadata={"description": "the user's whole new list of roles"})
    groups = fields.List(fields.String(validate=Length(min=1, max=128)), validate=Length(max=500),
                         metadata={"description": "the user's whole new list of groups (each must exist)"})
    manager = fields.String(allow_none=True, validate=Length(max=128),
                            metadata={"description": "the line manager's username; null clears it"})
    active = JsonBoolean(metadata={"description": "false deactivates (as POST .../deactivate), true reactivates"})
    locale = LOCALE


class UserIn(UserPatch):
    username = fields.String(required=True, validate=Length(min=1, max=128),
                             metadata={"description": "letters a-z, digits and . _ @ + -; unique in any letter case"})
    password = fields.String(required=True, load_only=True, validate=Length(min=8, max=MAX_PASSWORD))
    active = JsonBoolean(validate=validate.Equal(True), metadata={"description": "a new user is active"})


class PasswordIn(_Body):
    password = fields.String(required=True, load_only=True, validate=Length(min=8, max=MAX_PASSWORD))


class DeactivationOut(UserOut):
    released_tasks = fields.List(fields.Integer(), metadata={
        "description": "ids of the open tasks the user had claimed, now back in their queues"})


class GroupQuery(_In):
    q = fields.String(load_default=None, validate=Length(max=200),
                      metadata={"description": "words in the group's name or description (any case)"})


class GroupMemberOut(Schema):
    username = fields.String()
    display_name = fields.String()
    active = fields.Boolean()


class GroupSummaryOut(Schema):
    name = fields.String()
    description = fields.String(allow_none=True)
    manager = fields.String(allow_none=True, metadata={"description": "told when the group's records breach an SLA"})
    created_at = fields.DateTime()
    member_count = fields.Integer(metadata={"description": "active members"})


class GroupOut(GroupSummaryOut):
    members = fields.List(fields.Nested(GroupMemberOut))


class GroupListOut(Schema):
    items = fields.List(fields.Nested(GroupSummaryOut))


class GroupPatch(_Body):
    description = fields.String(allow_none=True, validate=Length(max=255))
    manager = fields.String(allow_none=True, validate=Length(max=128),
                            metadata={"description": "a username; null clears it"})


class GroupIn(GroupPatch):
    name = fields.String(required=True, validate=Length(min=1, max=128),
                         metadata={"description": "a lane's name in the diagrams; no slash"})


class MemberIn(_Body):
    username = fields.String(required=True, validate=Length(min=1, max=128))


class OwnProfilePatch(_Body):
    """What a user changes of their own profile: their language (an admin changes the rest)."""

    locale = fields.String(required=True, allow_none=True, validate=validate.OneOf(list(LANGUAGES)),
                           metadata=LOCALE.metadata)


class OwnPasswordIn(_Body):
    """The caller's own password change. Only the length is bounded here: the rules (and which
    field is wrong) are the user service's, so that the answer names ``current_password`` or
    ``new_password`` the same way on the API and the page."""

    current_password = fields.String(required=True, load_only=True, validate=Length(max=MAX_PASSWORD))
    new_password = fields.String(required=True, load_only=True, validate=Length(max=MAX_PASSWORD))


class OwnPasswordOut(TokenOut):
    """A fresh bearer token: the change ended every token the caller had, the one sent included."""

    user = fields.Nested(UserOut)


class AwayIn(_Body):
    delegate = fields.String(required=True, validate=Length(min=1, max=128),
                             metadata={"description": "who takes the tasks assigned to the user by name meanwhile: an "
                                                      "active user, holding each of the user's working roles"})
    starts = fields.AwareDateTime(data_key="from", attribute="from", load_default=None, allow_none=True,
                                  metadata={"description": "when the absence starts; absent or past: now"})
    until = fields.AwareDateTime(required=True, metadata={
        "description": "when it ends: after the start, not past, within 366 days of the start"})


class AwayTaskOut(Schema):
    id = fields.Integer()
    name = fields.String()
    bpmn_id = fields.String()
    instance_id = fields.Integer()
    process_id = fields.String()
    record = fields.String(allow_none=True)
    reason = fields.String(metadata={"description": "kept tasks only: why the delegate does not take it"})


class AwayOut(Schema):
    username = fields.String()
    away = fields.Boolean(metadata={"description": "an absence is set (now or to come)"})
    in_force = fields.Boolean(metadata={"description": "it holds now: tasks assigned by name go to the delegate"})
    starts = fields.DateTime(data_key="from", attribute="from", allow_none=True)
    until = fields.DateTime(allow_none=True)
    delegate = fields.Dict(allow_none=True, metadata={"description": "username and display_name"})
    handed = fields.List(fields.Nested(AwayTaskOut), metadata={"description": "open tasks handed to the delegate"})
    kept = fields.List(fields.Nested(AwayTaskOut), metadata={
        "description": "open tasks assigned to the user that stay with them, each with the reason"})


class TwoStepOut(Schema):
    username = fields.String()
    enabled = fields.Boolean(metadata={"description": "sign-in asks for a code of the user's authenticator app"})
    since = fields.DateTime(allow_none=True)
    pending = fields.Boolean(metadata={"description": "a set-up begun and not yet confirmed with a code"})
    recovery_codes_left = fields.Integer()
    required = fields.Boolean(metadata={"description": "a role of the user's requires it (TWO_STEP_REQUIRED_ROLES)"})


class TwoStepSetupOut(Schema):
    secret = fields.String(metadata={"description": "the new secret in base32, to type into the app: shown this once"})
    uri = fields.String(metadata={"description": "the otpauth:// address the set-up QR code holds"})


class TwoStepCodeIn(_Body):
    current_password = fields.String(required=True, load_only=True, validate=Length(max=MAX_PASSWORD))
    code = fields.String(required=True, validate=Length(min=1, max=64), load_only=True,
                         metadata={"description": "the current six-digit code of the app"})


class TwoStepOffIn(_Body):
    current_password = fields.String(required=True, load_only=True, validate=Length(max=MAX_PASSWORD))
    code = fields.String(required=True, validate=Length(min=1, max=64), load_only=True,
                         metadata={"description": "a current code of the app, or an unused recovery code"})


class RecoveryCodesIn(_Body):
    current_password = fields.String(required=True, load_only=True, validate=Length(max=MAX_PASSWORD))
    code = fields.String(required=True, validate=Length(min=1, max=64), load_only=True,
                         metadata={"description": "a current code of the app, or an unused recovery code (the new "
                                                  "codes turn two-step sign-in off: the password alone is not enough)"})


class RecoveryCodesOut(Schema):
    recovery_codes = fields.List(fields.String(), metadata={
        "description": "ten single-use codes, shown this once: each signs in once without the app"})
    two_step = fields.Nested(TwoStepOut)


class SavedViewIn(_Body):
    name = fields.String(required=True, validate=Length(max=1000), metadata={"description": "one line, at most 80 characters"})
    query = fields.String(required=True, validate=Length(max=5000), metadata={
        "description": "the record list's query string (kind, status, priority, category, group, assignee, requester, "
                       "opened_by, q, open, breached, sort), as GET /tickets and the /tickets page take it"})


class SavedViewOut(Schema):
    id = fields.Integer()
    name = fields.String()
    query = fields.String(metadata={"description": "normalised: the list's parameters only, in a fixed order"})
    created_at = fields.DateTime()


class SavedViewListOut(Schema):
    items = fields.List(fields.Nested(SavedViewOut))
