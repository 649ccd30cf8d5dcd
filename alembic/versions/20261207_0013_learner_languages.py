"""The learner model per language: learner_topics.languages, learner_mistakes.language

A topic's counters are also kept per language of the exercises (`languages`, a JSON object, empty for
what was counted before this revision); a mistake names its exercise's language (backfilled from it).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 00:10:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("learner_topics") as batch:
        batch.add_column(sa.Column("languages", sa.JSON(), server_default=sa.text("'{}'"), nullable=False))
    with op.batch_alter_table("learner_mistakes") as batch:
        batch.add_column(sa.Column("language", sa.String(length=40), server_default="python", nullable=False))
    op.execute(
        sa.text(
            "UPDATE learner_mistakes SET language = (SELECT exercises.language FROM exercises"
            " WHERE exercises.id = learner_mistakes.exercise_id) WHERE exercise_id IS NOT NULL"
        )
    )


def downgrade() -> None:
    with op.batch_alter_table("learner_mistakes") as batch:
        batch.drop_column("language")
    with op.batch_alter_table("learner_topics") as batch:
        batch.drop_column("languages")
