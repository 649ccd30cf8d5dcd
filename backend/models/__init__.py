"""Every model, imported here so Alembic's autogenerate and `alembic check` see the whole schema."""

from backend.models.auth import AuthSession, OAuthAccount, OneTimeToken, RefreshToken
from backend.models.chat import Conversation, LLMUsage, Message
from backend.models.exercises import Exercise, Submission, UserExercise
from backend.models.github import Job, Repository, Review, WebhookDelivery
from backend.models.learner import LearnerMistake, LearnerProfile, LearnerTopic
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
    "Conversation",
    "DailyActivity",
    "Exercise",
    "ExerciseCompletion",
    "Job",
    "LLMUsage",
    "LearnerMistake",
    "LearnerProfile",
    "LearnerTopic",
    "Message",
    "OAuthAccount",
    "OneTimeToken",
    "RefreshToken",
    "Repository",
    "Review",
    "Submission",
    "TopicSkill",
    "User",
    "UserAchievement",
    "UserExercise",
    "UserProgress",
    "WebhookDelivery",
]
