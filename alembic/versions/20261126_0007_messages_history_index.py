"""messages: one index on (conversation_id, id) instead of (conversation_id)

The chat history read (`WHERE conversation_id = ? ORDER BY id DESC LIMIT 20`) and message paging walk
this index backwards and stop after the page; with the old one PostgreSQL fetched every message of the
conversation and sorted them. The new index also serves the foreign key, so the old one goes.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 15:30:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_messages_conversation_id_id", "messages", ["conversation_id", "id"])
    op.drop_index("ix_messages_conversation_id", table_name="messages")


def downgrade() -> None:
    op.create_index("ix_messages_conversation_id", "messages", ["conversation_id"])
    op.drop_index("ix_messages_conversation_id_id", table_name="messages")
