from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

Role = Literal["student", "mentor", "admin"]
SkillLevel = Literal["beginner", "intermediate", "advanced", "expert"]


class UserRead(BaseModel):
    """The `User` of API.md: everything the SPA shows about the signed-in student."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    name: str
    avatar_url: str | None
    bio: str | None
    role: Role
    email_verified: bool
    programming_language: str | None
    skill_level: SkillLevel | None
    career_goals: str | None
    learning_style: str | None
    time_commitment: str | None
    timezone: str
    onboarding_completed: bool
    current_streak: int
    longest_streak: int
    exercises_completed: int
    created_at: datetime
    updated_at: datetime
    last_login_at: datetime | None
