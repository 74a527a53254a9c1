"""Signed tokens for links in email: HMAC-SHA256 over a purpose and a value.

A token is `<value, base64url>.<signature, base64url>`. The purpose (e.g.
"unsubscribe") is part of what is signed, so a token made for one kind of
link is worthless for another, and the value is readable by whoever holds
the link (it is their own address) but cannot be changed without the secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import quote

# Secrets that ship in examples; csflow refuses them wherever a token could be forged.
DEFAULT_SECRETS = frozenset({"", "change-me"})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, purpose: str, value: str) -> bytes:
    return hmac.new(secret.encode(), f"{purpose}\x00{value}".encode(), hashlib.sha256).digest()


def sign(secret: str, purpose: str, value: str) -> str:
    return f"{_b64(value.encode())}.{_b64(_mac(secret, purpose, value))}"


def verify(secret: str, purpose: str, token: str) -> str | None:
    """The signed value, or None for a token that was altered, truncated or made for another purpose."""
    encoded, _, signature = token.partition(".")
    try:
        value = _unb64(encoded).decode()
        given = _unb64(signature)
    except (ValueError, UnicodeDecodeError):
        return None
    return value if hmac.compare_digest(given, _mac(secret, purpose, value)) else None


def link(base_url: str, token: str) -> str:
    """`<base_url>/<token>`, the token percent-encoded as one path segment."""
    return f"{base_url.rstrip('/')}/{quote(token, safe='')}"
