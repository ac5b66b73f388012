"""Session tokens (HS256 JWTs shaped like ProjectX's) and the fake's controllable clock."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field

CLAIM = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/"
MS_CLAIM = "http://schemas.microsoft.com/ws/2008/06/identity/claims/"


class Clock:
    """Wall-clock seconds plus an offset that tests move forward with :meth:`advance`."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class TokenIssuer:
    """Issues and checks tokens; revocation works per session id or for everything issued so far."""

    clock: Clock
    lifetime_s: float = 24 * 3600
    msd: tuple[str, ...] = ("CMEGROUP_TOB", "CME_TOB")
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    revoked_sessions: set[str] = field(default_factory=set)

    def issue(self, user: str, session: str | None = None) -> str:
        claims = {
            CLAIM + "nameidentifier": str(abs(hash(user)) % 1_000_000),
            MS_CLAIM + "sid": session or secrets.token_hex(16),
            CLAIM + "name": user,
            MS_CLAIM + "role": "user",
            MS_CLAIM + "authenticationmethod": "api-key",
            "msd": list(self.msd),
            "mfa": "unverified",
            "exp": int(self.clock.now() + self.lifetime_s),
        }
        head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
        body = _b64(json.dumps(claims, separators=(",", ":")).encode())
        sig = _b64(hmac.new(self.secret, f"{head}.{body}".encode(), hashlib.sha256).digest())
        return f"{head}.{body}.{sig}"

    def claims(self, token: str | None, allow_expired: bool = False) -> dict | None:
        """The token's claims if it is genuine, not revoked and (unless ``allow_expired``) unexpired."""
        try:
            head, body, sig = (token or "").split(".")
            good = _b64(hmac.new(self.secret, f"{head}.{body}".encode(), hashlib.sha256).digest())
            if not hmac.compare_digest(good, sig):
                return None
            claims = json.loads(_unb64(body))
        except ValueError:
            return None
        if claims.get(MS_CLAIM + "sid") in self.revoked_sessions:
            return None
        if not allow_expired and claims.get("exp", 0) <= self.clock.now():
            return None
        return claims

    def rotate(self) -> None:
        """Invalidate every token issued so far."""
        self.secret = secrets.token_bytes(32)


def user_of(claims: dict) -> str:
    return claims.get(CLAIM + "name", "")


def session_of(claims: dict) -> str:
    return claims.get(MS_CLAIM + "sid", "")
