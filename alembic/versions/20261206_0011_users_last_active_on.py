"""users.last_active_on (moved from user_progress): the streak shown is 0 once a local day was missed

Every read of the user (profile, progress, export) compares it with today in the user's time zone, so
it lives on the row that is read anyway. Backfilled from user_progress.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 20:30:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("last_active_on", sa.Date(), nullable=True))
    op.execute(
        "UPDATE users SET last_active_on = "
        "(SELECT user_progress.last_active_on FROM user_progress WHERE user_progress.user_id = users.id)"
    )
    with op.batch_alter_table("user_progress") as batch:
        batch.drop_column("last_active_on")


def downgrade() -> None:
    with op.batch_alter_table("user_progress") as batch:
        batch.add_column(sa.Column("last_active_on", sa.Date(), nullable=True))
    op.execute(
        "UPDATE user_progress SET last_active_on = "
        "(SELECT users.last_active_on FROM users WHERE users.id = user_progress.user_id)"
    )
    with op.batch_alter_table("users") as batch:
        batch.drop_column("last_active_on")
