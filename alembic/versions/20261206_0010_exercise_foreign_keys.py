"""Foreign keys from conversations.exercise_id and exercise_completions.exercise_id to exercises

Rows that point at no exercise (or, for a conversation, at another user's private exercise) are cleaned
first: such a conversation becomes a general one, such a completion is dropped (its exercise is gone, as
its submissions would be).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 20:20:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        sa.text(
            "UPDATE conversations SET exercise_id = NULL, context_type = 'general' "
            "WHERE exercise_id IS NOT NULL AND NOT EXISTS ("
            " SELECT 1 FROM exercises WHERE exercises.id = conversations.exercise_id"
            " AND (exercises.visibility != 'private' OR exercises.author_id = conversations.user_id))"
        )
    )
    op.execute(
        sa.text(
            "DELETE FROM exercise_completions WHERE NOT EXISTS ("
            " SELECT 1 FROM exercises WHERE exercises.id = exercise_completions.exercise_id)"
        )
    )
    with op.batch_alter_table("conversations") as batch:
        batch.create_index(batch.f("ix_conversations_exercise_id"), ["exercise_id"], unique=False)
        batch.create_foreign_key(
            batch.f("fk_conversations_exercise_id_exercises"), "exercises", ["exercise_id"], ["id"], ondelete="SET NULL"
        )
    with op.batch_alter_table("exercise_completions") as batch:
        batch.create_index(batch.f("ix_exercise_completions_exercise_id"), ["exercise_id"], unique=False)
        batch.create_foreign_key(
            batch.f("fk_exercise_completions_exercise_id_exercises"),
            "exercises",
            ["exercise_id"],
            ["id"],
            ondelete="CASCADE",
        )


def downgrade() -> None:
    with op.batch_alter_table("exercise_completions") as batch:
        batch.drop_constraint(batch.f("fk_exercise_completions_exercise_id_exercises"), type_="foreignkey")
        batch.drop_index(batch.f("ix_exercise_completions_exercise_id"))
    with op.batch_alter_table("conversations") as batch:
        batch.drop_constraint(batch.f("fk_conversations_exercise_id_exercises"), type_="foreignkey")
        batch.drop_index(batch.f("ix_conversations_exercise_id"))
