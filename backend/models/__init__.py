"""Every model, imported here so Alembic's autogenerate and `alembic check` see the whole schema."""

from backend.models.auth import AuthSession, OAuthAccount, OneTimeToken, RefreshToken
from backend.models.progress import (
    Achievement,
    DailyActivity,
    ExerciseCompletion,
    TopicSkill,
    UserAchievement,
    UserProgress,
)
from backend.models.user import User

__all__ = [
    "Achievement",
    "AuthSession",
    "DailyActivity",
    "ExerciseCompletion",
    "OAuthAccount",
    "OneTimeToken",
    "RefreshToken",
    "TopicSkill",
    "User",
    "UserAchievement",
    "UserProgress",
]
