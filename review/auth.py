"""Reviewers, passwords, browser sessions with CSRF tokens, and bearer tokens for the API.

Passwords are hashed with the stdlib's scrypt; session and API tokens are random
and stored only as their SHA-256, so a copy of the database lets no one in.
Repeated wrong passwords for one name, or from one address, lock the login for a
while that grows with each further failure.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import math
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from pipeline.errors import FormscanError
from review.store import ApiToken, FailedLogin, User, WebSession, now

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
SESSION_LIFETIME = timedelta(hours=12)
TOKEN_PREFIX = "fst_"
LOCKOUT_AFTER = 5  # failures in FAILURE_WINDOW, for one name or from one address
FAILURE_WINDOW = timedelta(minutes=15)
FIRST_LOCKOUT = timedelta(seconds=30)  # doubled for each failure past LOCKOUT_AFTER
LONGEST_LOCKOUT = timedelta(minutes=15)
KEY_LENGTH = 100  # FailedLogin's columns: a longer name or address is cut, not refused by the database

log = logging.getLogger("formscan.review.auth")


class AuthError(FormscanError):
    kind = "auth"


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    encode = lambda raw: base64.b64encode(raw).decode()
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${encode(salt)}${encode(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    computed = hashlib.scrypt(
        password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=32
    )
    return hmac.compare_digest(computed, base64.b64decode(digest))


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def set_password(session: Session, name: str, password: str) -> User:
    """Create the user, or change the password of an existing one."""
    if not name.strip() or not password:
        raise AuthError("a user needs a name and a non-empty password")
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        user = User(name=name, password_hash=hash_password(password))
        session.add(user)
    else:
        user.password_hash = hash_password(password)
    session.flush()
    return user


def authenticate(session: Session, name: str, password: str) -> User | None:
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        hash_password(password)  # same work either way: timing does not tell which names exist
        return None
    return user if verify_password(password, user.password_hash) else None


def create_api_token(session: Session, name: str) -> str:
    """A new bearer token for user ``name``; shown once, stored hashed."""
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise AuthError(f"no user {name!r}: add one with `formscan user add {name}`")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, token_hash=_token_hash(token)))
    return token


def user_for_api_token(session: Session, token: str) -> User | None:
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _token_hash(token)))
    return row.user if row else None


def start_session(session: Session, user: User) -> tuple[str, str]:
    """A new browser session: (cookie token, CSRF token)."""
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    session.add(WebSession(token_hash=_token_hash(token), user_id=user.id, csrf_token=csrf,
                           expires_at=now() + SESSION_LIFETIME))
    session.execute(delete(WebSession).where(WebSession.expires_at < now()))
    return token, csrf


def find_session(session: Session, token: str) -> WebSession | None:
    row = session.scalar(select(WebSession).where(WebSession.token_hash == _token_hash(token)))
    if row is None:
        return None
    expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=UTC)
    return row if expires > datetime.now(UTC) else None


def end_session(session: Session, token: str) -> None:
    session.execute(delete(WebSession).where(WebSession.token_hash == _token_hash(token)))


def csrf_matches(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected, given)


# --- throttling repeated wrong passwords ---------------------------------------------------

def lockout_after(failures: int) -> timedelta:
    """How long logins stay refused after the last of ``failures`` recent failures (zero below the threshold)."""
    if failures < LOCKOUT_AFTER:
        return timedelta(0)
    doublings = min(failures - LOCKOUT_AFTER, 16)  # 30 s * 2**16 is far past the longest lockout already
    return min(FIRST_LOCKOUT * 2**doublings, LONGEST_LOCKOUT)


def whole_seconds(wait: timedelta) -> int:
    """A lockout as Retry-After states it: whole seconds, rounded up."""
    return math.ceil(wait.total_seconds())


def _as_utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # SQLite hands back naive UTC times


def _wait(session: Session, name: str, address: str, now: datetime) -> timedelta:
    """The longer of the lockouts that the name's and the address's recent failures impose at ``now``
    (zero when neither is locked)."""
    wait = timedelta(0)
    for column, key in ((FailedLogin.name, name[:KEY_LENGTH]), (FailedLogin.address, address[:KEY_LENGTH])):
        count, last = session.execute(
            select(func.count(), func.max(FailedLogin.at)).where(column == key, FailedLogin.at > now - FAILURE_WINDOW)
        ).one()
        if count:
            wait = max(wait, _as_utc(last) + lockout_after(count) - now)
    return wait


def login_lockout(session: Session, name: str, address: str, now: datetime) -> timedelta:
    """How much longer a login as ``name`` from ``address`` is refused; zero when it may go ahead."""
    wait = _wait(session, name, address, now)
    if wait:
        log.warning("login as %r from %s refused: locked for %d s more", name, address, whole_seconds(wait))
    return wait


def record_login_failure(session: Session, name: str, address: str, now: datetime) -> timedelta:
    """Note a wrong password (or an unknown name); returns the lockout it starts, zero when none."""
    session.execute(delete(FailedLogin).where(FailedLogin.at <= now - FAILURE_WINDOW))  # no longer counted
    session.add(FailedLogin(name=name[:KEY_LENGTH], address=address[:KEY_LENGTH], at=now))
    session.flush()
    wait = _wait(session, name, address, now)
    if wait:
        log.warning("wrong password for %r from %s: logins locked for %d s", name, address, whole_seconds(wait))
    else:
        log.warning("wrong password for %r from %s", name, address)
    return wait


def clear_login_failures(session: Session, name: str) -> None:
    """A successful login forgets the name's failures (from every address)."""
    session.execute(delete(FailedLogin).where(FailedLogin.name == name[:KEY_LENGTH]))
