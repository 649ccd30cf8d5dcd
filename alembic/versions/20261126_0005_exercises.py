"""exercises, user_exercises, submissions (the catalog, daily assignments, graded submissions)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 13:06:09.382877+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "exercises",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(length=120), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("starter_code", sa.Text(), nullable=False),
        sa.Column("language", sa.String(length=40), nullable=False),
        sa.Column("difficulty", sa.String(length=10), nullable=False),
        sa.Column("exercise_type", sa.String(length=20), nullable=False),
        sa.Column("topics", sa.JSON(), nullable=False),
        sa.Column("examples", sa.JSON(), nullable=False),
        sa.Column("tests", sa.JSON(), nullable=False),
        sa.Column("hints", sa.JSON(), nullable=False),
        sa.Column("solution", sa.Text(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("visibility", sa.String(length=10), server_default="public", nullable=False),
        sa.Column("generated_by_ai", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("reference_duration_ms", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("difficulty IN ('easy', 'medium', 'hard')", name=op.f("ck_exercises_difficulty")),
        sa.CheckConstraint(
            "exercise_type IN ('algorithm', 'data_structure', 'debugging', 'practical')",
            name=op.f("ck_exercises_exercise_type"),
        ),
        sa.CheckConstraint("visibility IN ('public', 'private')", name=op.f("ck_exercises_visibility")),
        sa.ForeignKeyConstraint(
            ["author_id"], ["users.id"], name=op.f("fk_exercises_author_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exercises")),
        sa.UniqueConstraint("slug", name=op.f("uq_exercises_slug")),
    )
    op.create_index(op.f("ix_exercises_author_id"), "exercises", ["author_id"], unique=False)
    op.create_index(op.f("ix_exercises_language"), "exercises", ["language"], unique=False)

    op.create_table(
        "user_exercises",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("exercise_id", sa.Integer(), nullable=False),
        sa.Column("assigned_for", sa.Date(), nullable=True),
        sa.Column("status", sa.String(length=20), server_default="pending", nullable=False),
        sa.Column("hints_used", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("submissions_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("best_grade", sa.Float(), nullable=True),
        sa.Column("time_spent_seconds", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("skipped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=10), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("changed_difficulty", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint(
            "outcome IS NULL OR outcome IN ('success', 'struggle', 'neutral')", name=op.f("ck_user_exercises_outcome")
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'in_progress', 'completed', 'skipped')", name=op.f("ck_user_exercises_status")
        ),
        sa.CheckConstraint("hints_used >= 0 AND hints_used <= 3", name=op.f("ck_user_exercises_hints_used_range")),
        sa.ForeignKeyConstraint(
            ["exercise_id"], ["exercises.id"], name=op.f("fk_user_exercises_exercise_id_exercises"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_user_exercises_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_exercises")),
        sa.UniqueConstraint("user_id", "assigned_for", name=op.f("uq_user_exercises_user_id_assigned_for")),
        sa.UniqueConstraint("user_id", "exercise_id", name=op.f("uq_user_exercises_user_id_exercise_id")),
    )
    op.create_index(op.f("ix_user_exercises_exercise_id"), "user_exercises", ["exercise_id"], unique=False)

    op.create_table(
        "submissions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("exercise_id", sa.Integer(), nullable=False),
        sa.Column("user_exercise_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=10), server_default="queued", nullable=False),
        sa.Column("grade", sa.Float(), nullable=True),
        sa.Column("tests_passed", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("tests_total", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("results", sa.JSON(), nullable=False),
        sa.Column("stdout", sa.Text(), server_default="", nullable=False),
        sa.Column("stderr", sa.Text(), server_default="", nullable=False),
        sa.Column("feedback", sa.Text(), nullable=True),
        sa.Column("strengths", sa.JSON(), nullable=False),
        sa.Column("improvements", sa.JSON(), nullable=False),
        sa.Column("rubric", sa.JSON(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'passed', 'failed', 'error', 'timeout')",
            name=op.f("ck_submissions_status"),
        ),
        sa.ForeignKeyConstraint(
            ["exercise_id"], ["exercises.id"], name=op.f("fk_submissions_exercise_id_exercises"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_exercise_id"],
            ["user_exercises.id"],
            name=op.f("fk_submissions_user_exercise_id_user_exercises"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_submissions_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_submissions")),
    )
    op.create_index(op.f("ix_submissions_exercise_id"), "submissions", ["exercise_id"], unique=False)
    op.create_index(op.f("ix_submissions_user_exercise_id"), "submissions", ["user_exercise_id"], unique=False)
    op.create_index("ix_submissions_user_id_exercise_id", "submissions", ["user_id", "exercise_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_submissions_user_id_exercise_id", table_name="submissions")
    op.drop_index(op.f("ix_submissions_user_exercise_id"), table_name="submissions")
    op.drop_index(op.f("ix_submissions_exercise_id"), table_name="submissions")

    op.drop_table("submissions")
    op.drop_index(op.f("ix_user_exercises_exercise_id"), table_name="user_exercises")

    op.drop_table("user_exercises")
    op.drop_index(op.f("ix_exercises_language"), table_name="exercises")
    op.drop_index(op.f("ix_exercises_author_id"), table_name="exercises")

    op.drop_table("exercises")
