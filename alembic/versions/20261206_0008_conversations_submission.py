"""conversations.submission_id: a conversation started from a submission ("why did this fail?")

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 20:10:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("submission_id", sa.Integer(), nullable=True))
        batch.create_index(batch.f("ix_conversations_submission_id"), ["submission_id"], unique=False)
        batch.create_foreign_key(
            batch.f("fk_conversations_submission_id_submissions"),
            "submissions",
            ["submission_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.drop_constraint(batch.f("fk_conversations_submission_id_submissions"), type_="foreignkey")
        batch.drop_index(batch.f("ix_conversations_submission_id"))
        batch.drop_column("submission_id")
