"""Every model, imported here so Alembic's autogenerate and `alembic check` see the whole schema."""

from backend.models.auth import AuthSession, OAuthAccount, OneTimeToken, RefreshToken
from backend.models.user import User

__all__ = ["AuthSession", "OAuthAccount", "OneTimeToken", "RefreshToken", "User"]
