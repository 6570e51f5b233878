"""Group names are case-insensitive: a unique index on ``lower(name)`` of the group table.

"ServiceDesk" and "servicedesk" are one group from now on: the service already refused to create
the second (``create_group``), and now finds the first in any letter case (``ensure_group``,
/api/v1/groups/<name>); the index holds the rule for every writer. A database that already holds
such names cannot take the index: the upgrade stops before changing anything, naming each set of
clashing groups, so an administrator can merge them (move the members and the records' assignment
group to one, delete the other) or rename one (``UPDATE "group" SET name = ... WHERE id = ...``;
a lane names its group exactly) and run it again.

Revision ID: 0022
Revises: 0021
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None

#: An expression index: SQLite's reflection cannot read it back, so a later migration that
#: rebuilds the group table with batch_alter_table must create it again itself.
INDEX = "uq_group_name_lower"

_GROUP = sa.table("group", sa.column("id", sa.Integer), sa.column("name", sa.String))


class DuplicateGroupNames(RuntimeError):
    """The database holds group names equal but for case; the upgrade changed nothing."""


def case_duplicates(connection: sa.Connection) -> list[list[str]]:
    """Each set of group names that ``lower()`` makes equal, as the database folds them (the same
    function the index uses), sorted; empty when there is none."""
    folded = sa.func.lower(_GROUP.c.name)
    clashing = (sa.select(folded.label("folded")).group_by(folded)
                .having(sa.func.count() > 1).subquery())
    rows = connection.execute(
        sa.select(_GROUP.c.name, folded.label("folded"))
        .where(folded.in_(sa.select(clashing.c.folded)))
        .order_by(folded, _GROUP.c.name)).all()
    sets: dict[str, list[str]] = {}
    for name, key in rows:
        sets.setdefault(key, []).append(name)
    return list(sets.values())


def upgrade() -> None:
    duplicates = case_duplicates(op.get_bind())
    if duplicates:
        listed = "; ".join(", ".join(repr(name) for name in names) for names in duplicates)
        raise DuplicateGroupNames(
            f"group names must differ in more than letter case, but these do: {listed}. Merge them (one team: "
            "move the members to one group and delete the other) or rename one, then run the upgrade again; "
            "nothing was changed.")
    op.create_index(INDEX, "group", [sa.text("lower(name)")], unique=True)


def downgrade() -> None:
    op.drop_index(INDEX, table_name="group")
