"""profiles, onboarding answers, progress, skill levels, daily activity, achievements

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 12:37:27.434336+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "achievements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(length=50), nullable=False),
        sa.Column("title", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("category", sa.String(length=20), nullable=False),
        sa.Column("metric", sa.String(length=40), nullable=False),
        sa.Column("target", sa.Integer(), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint(
            "category IN ('exercises', 'streaks', 'mastery', 'habits', 'reviews')",
            name=op.f("ck_achievements_category"),
        ),
        sa.CheckConstraint("target >= 1 AND points >= 0", name=op.f("ck_achievements_target_points")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_achievements")),
        sa.UniqueConstraint("slug", name=op.f("uq_achievements_slug")),
    )
    op.create_table(
        "daily_activity",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("exercises_completed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("submissions", sa.Integer(), server_default="0", nullable=False),
        sa.Column("time_spent_seconds", sa.Integer(), server_default="0", nullable=False),
        sa.Column("grade_total", sa.Float(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_daily_activity_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_daily_activity")),
        sa.UniqueConstraint("user_id", "date", name=op.f("uq_daily_activity_user_id")),
    )
    op.create_table(
        "exercise_completions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("completion_key", sa.String(length=100), nullable=False),
        sa.Column("exercise_id", sa.Integer(), nullable=False),
        sa.Column("topics", sa.JSON(), nullable=False),
        sa.Column("difficulty", sa.String(length=10), nullable=False),
        sa.Column("grade", sa.Float(), nullable=False),
        sa.Column("hints_used", sa.Integer(), nullable=False),
        sa.Column("time_spent_seconds", sa.Integer(), nullable=False),
        sa.Column("local_date", sa.Date(), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("difficulty IN ('easy', 'medium', 'hard')", name=op.f("ck_exercise_completions_difficulty")),
        sa.CheckConstraint("grade >= 0 AND grade <= 100", name=op.f("ck_exercise_completions_grade_range")),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_exercise_completions_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exercise_completions")),
        sa.UniqueConstraint("user_id", "completion_key", name=op.f("uq_exercise_completions_user_id")),
    )
    op.create_table(
        "skill_levels",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("topic", sa.String(length=60), nullable=False),
        sa.Column("level", sa.String(length=20), server_default="beginner", nullable=False),
        sa.Column("exercises_completed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("grade_total", sa.Float(), server_default="0", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint(
            "level IN ('beginner', 'intermediate', 'advanced', 'expert')", name=op.f("ck_skill_levels_level")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_skill_levels_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_skill_levels")),
        sa.UniqueConstraint("user_id", "topic", name=op.f("uq_skill_levels_user_id")),
    )
    op.create_table(
        "user_achievements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("achievement_id", sa.Integer(), nullable=False),
        sa.Column("unlocked_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["achievement_id"],
            ["achievements.id"],
            name=op.f("fk_user_achievements_achievement_id_achievements"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_user_achievements_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_achievements")),
        sa.UniqueConstraint("user_id", "achievement_id", name=op.f("uq_user_achievements_user_id")),
    )
    op.create_index(op.f("ix_user_achievements_achievement_id"), "user_achievements", ["achievement_id"], unique=False)
    op.create_table(
        "user_progress",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("total_time_spent_seconds", sa.Integer(), server_default="0", nullable=False),
        sa.Column("grade_total", sa.Float(), server_default="0", nullable=False),
        sa.Column("last_active_on", sa.Date(), nullable=True),
        sa.Column("current_difficulty", sa.String(length=10), nullable=True),
        sa.Column("no_hint_completions", sa.Integer(), server_default="0", nullable=False),
        sa.Column("perfect_scores", sa.Integer(), server_default="0", nullable=False),
        sa.Column("hard_completions", sa.Integer(), server_default="0", nullable=False),
        sa.Column("early_completions", sa.Integer(), server_default="0", nullable=False),
        sa.Column("late_completions", sa.Integer(), server_default="0", nullable=False),
        sa.Column("reviews_completed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint(
            "current_difficulty IS NULL OR current_difficulty IN ('easy', 'medium', 'hard')",
            name=op.f("ck_user_progress_current_difficulty"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_user_progress_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_user_progress")),
    )
    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(sa.Column("onboarding_answers", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_column("onboarding_answers")
    op.drop_table("user_progress")
    op.drop_index(op.f("ix_user_achievements_achievement_id"), table_name="user_achievements")
    op.drop_table("user_achievements")
    op.drop_table("skill_levels")
    op.drop_table("exercise_completions")
    op.drop_table("daily_activity")
    op.drop_table("achievements")
