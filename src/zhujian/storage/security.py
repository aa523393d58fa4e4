"""Password hashing with Argon2id (argon2-cffi). The web layer adds sessions and tokens on top of
`verify_password`; nothing here knows about HTTP."""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# argon2-cffi defaults (RFC 9106 low-memory profile: argon2id, 64 MiB, t=3, p=4; about 0.25 s per hash here).
DEFAULT_HASHER = PasswordHasher()


@cache
def _dummy_hash() -> str:
    # Made on first use, not at import: hashing takes a quarter of a second.
    return DEFAULT_HASHER.hash("zhujian-no-such-user")


def hash_password(password: str, hasher: PasswordHasher | None = None) -> str:
    return (hasher or DEFAULT_HASHER).hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when `password` matches `password_hash`; False for a wrong password or an unreadable hash."""
    try:
        return DEFAULT_HASHER.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def password_needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with weaker parameters than the current default (rehash at next login)."""
    try:
        return DEFAULT_HASHER.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


def spend_verification_time(password: str) -> None:
    """Verify against a dummy hash, so that a login with an unknown user name takes as long as a wrong password
    and its timing does not reveal which user names exist."""
    verify_password(_dummy_hash(), password)
