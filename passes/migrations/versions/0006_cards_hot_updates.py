"""cards: let balance updates be HOT (drop the unused change_seq index, leave room in pages)

Every purchase rewrites its card's row. PostgreSQL can update a row in place on its page, without
touching any index ("heap-only tuple"), when no indexed column changes and the page has room. The
change_seq index made every card update touch all six of the table's indexes; nothing reads by it
(the PassKit listing reaches cards through a device's registrations, by primary key). A fill
factor of 80 keeps a fifth of each page free for the new row versions. It applies to pages written
from now on; on a large existing table, rewrite it once in a quiet hour (``VACUUM FULL cards``, or
pg_repack without the lock) so that its old, full pages get that room too.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # DROP INDEX locks the table only for as long as it takes to unlink the index (migrations
    # run in one transaction, so CONCURRENTLY is not available here).
    op.drop_index("ix_cards_change_seq", table_name="cards")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE cards SET (fillfactor = 80)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE cards RESET (fillfactor)")
    op.create_index("ix_cards_change_seq", "cards", ["change_seq"])
