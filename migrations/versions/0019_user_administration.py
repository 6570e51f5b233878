"""Usernames are case-insensitive: a unique index on ``lower(username)``.

"Alex" and "alex" sign in as one user from now on, and a new user whose name differs from an
existing one only in case is refused. A database that already holds such names cannot take the
index: the upgrade stops before changing anything, naming each set of clashing usernames, so an
administrator can rename or merge them (``UPDATE "user" SET username = ... WHERE id = ...``) and
run it again.

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None

#: An expression index: SQLite's reflection cannot read it back, so a later migration that
#: rebuilds the user table with batch_alter_table must create it again itself.
INDEX = "uq_user_username_lower"

_USER = sa.table("user", sa.column("id", sa.Integer), sa.column("username", sa.String))


class DuplicateUsernames(RuntimeError):
    """The database holds usernames equal but for case; the upgrade changed nothing."""


def case_duplicates(connection: sa.Connection) -> list[list[str]]:
    """Each set of usernames that ``lower()`` makes equal, as the database folds them (the same
    function the index uses), sorted; empty when there is none."""
    folded = sa.func.lower(_USER.c.username)
    clashing = (sa.select(folded.label("folded")).group_by(folded)
                .having(sa.func.count() > 1).subquery())
    rows = connection.execute(
        sa.select(_USER.c.username, folded.label("folded"))
        .where(folded.in_(sa.select(clashing.c.folded)))
        .order_by(folded, _USER.c.username)).all()
    sets: dict[str, list[str]] = {}
    for username, key in rows:
        sets.setdefault(key, []).append(username)
    return list(sets.values())


def upgrade() -> None:
    duplicates = case_duplicates(op.get_bind())
    if duplicates:
        listed = "; ".join(", ".join(repr(name) for name in names) for names in duplicates)
        raise DuplicateUsernames(
            f"usernames must differ in more than letter case, but these do: {listed}. Rename or merge them "
            "(each set is one person or should be told apart), then run the upgrade again; nothing was changed.")
    op.create_index(INDEX, "user", [sa.text("lower(username)")], unique=True)


def downgrade() -> None:
    op.drop_index(INDEX, table_name="user")
