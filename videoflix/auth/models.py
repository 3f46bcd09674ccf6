"""Accounts: users, their profiles, issued refresh tokens and the database revocation list."""
from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, event, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from videoflix.extensions import db
from videoflix.models_base import UTCDateTime, utcnow


class User(db.Model):
    """An account. E-mails are stored lower-cased, so uniqueness ignores letter case."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    is_active: Mapped[bool] = mapped_column(default=False)
    is_staff: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    last_login: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the account was first activated (by its e-mailed link, an admin or the CLI). Once set,
    # activation links are dead for good, even after a deactivation.
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    profile: Mapped["Profile"] = relationship(
        back_populates="user", cascade="all, delete-orphan", uselist=False, lazy="raise_on_sql"
    )

    def __repr__(self):
        return f"<User {self.id} {self.email}>"


@event.listens_for(User.is_active, "set")
def _record_activation(user, value, oldvalue, initiator):
    """Every way of activating an account (API link, admin form or action, CLI) sets is_active, so
    the first activation is recorded here rather than in each of them."""
    if value and user.activated_at is None:
        user.activated_at = utcnow()


class Profile(db.Model):
    """Information about a user beyond the credentials; created with the user."""

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    display_name: Mapped[str] = mapped_column(String(150), default="")
    bio: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    user: Mapped[User] = relationship(back_populates="profile")


class RefreshToken(db.Model):
    """One issued refresh token. Tokens of one login share a family; rotation links them."""

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    family: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    replaced_by: Mapped[str | None] = mapped_column(String(64))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RevokedToken(db.Model):
    """The revocation list when no Redis is configured: a key per token or per user cut-off."""

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(String(40), default="1")
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True, server_default=func.now())
