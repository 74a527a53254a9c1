"""Signed tokens for links in email and the workspace's session: HMAC-SHA256
over a purpose and a value, with an optional expiry.

A token is `<payload, base64url>.<signature, base64url>`; the payload is the
value, or the value and its expiry (Unix seconds) separated by a unit
separator. The purpose ("unsubscribe", "outcome", "session", ...) is part of
what is signed, so a token made for one kind of link is worthless for another.
The value is readable by whoever holds the token (their own address, a
firing's id) but cannot be changed without the secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from urllib.parse import quote

# Secrets that ship in examples; csflow refuses them wherever a token could be forged.
DEFAULT_SECRETS = frozenset({"", "change-me"})
_EXPIRY = "\x1f"


class TokenError(ValueError):
    """A token that was altered, truncated, made for another purpose, or is too old."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, purpose: str, payload: str) -> bytes:
    return hmac.new(secret.encode(), f"{purpose}\x00{payload}".encode(), hashlib.sha256).digest()


def sign(secret: str, purpose: str, value: str, max_age: int | None = None) -> str:
    """A token for value; with max_age (seconds) it stops being valid after that long."""
    payload = value if max_age is None else f"{value}{_EXPIRY}{int(time.time()) + max_age}"
    return f"{_b64(payload.encode())}.{_b64(_mac(secret, purpose, payload))}"


def read(secret: str, purpose: str, token: str) -> str:
    """The signed value; TokenError says why not (not valid, or expired)."""
    encoded, _, signature = token.partition(".")
    try:
        payload = _unb64(encoded).decode()
        given = _unb64(signature)
    except (ValueError, UnicodeDecodeError):
        raise TokenError("this link is not valid") from None
    if not hmac.compare_digest(given, _mac(secret, purpose, payload)):
        raise TokenError("this link is not valid")
    value, _, expires = payload.partition(_EXPIRY)
    if expires and int(expires) < time.time():
        raise TokenError("this link has expired")
    return value


def verify(secret: str, purpose: str, token: str) -> str | None:
    """The signed value, or None for a token that is not valid or has expired."""
    try:
        return read(secret, purpose, token)
    except TokenError:
        return None


def link(base_url: str, token: str) -> str:
    """`<base_url>/<token>`, the token percent-encoded as one path segment."""
    return f"{base_url.rstrip('/')}/{quote(token, safe='')}"
