"""exercises.family: the catalog exercise a row belongs to, in whichever language

One authored exercise is a row per language (its Python row keeps the catalog slug; `fizzbuzz-javascript`
is the JavaScript one); `family` is the catalog slug on all of them, so a read can switch language.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 20:45:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("exercises") as batch:
        batch.add_column(sa.Column("family", sa.String(length=120), nullable=True))
        batch.create_index(batch.f("ix_exercises_family"), ["family"], unique=False)
    op.execute(sa.text("UPDATE exercises SET family = slug WHERE author_id IS NULL"))


def downgrade() -> None:
    with op.batch_alter_table("exercises") as batch:
        batch.drop_index(batch.f("ix_exercises_family"))
        batch.drop_column("family")
