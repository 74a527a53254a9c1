"""The one email-address check: exactly one plain addr-spec, nothing else.

Landing files, settings and the mailers all use it, so a value such as
`a@x.com, evil@y.com` or `a@x.com>, <evil@y.com` is refused where it enters
(ingest rejects the row) and again before a message is built: it can never
become a second recipient. The pattern is a dot-atom local part and a host
name with at least one dot (RFC 5321 without quoted local parts or address
literals), written so that Python's `re` and Arrow's RE2 read it the same.
"""

from __future__ import annotations

import re

_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?"
ADDRESS_PATTERN = rf"^{_ATOM}(\.{_ATOM})*@{_LABEL}(\.{_LABEL})+$"
MAX_LENGTH = 254  # RFC 5321's limit on a forward path, less the angle brackets

_ADDRESS = re.compile(ADDRESS_PATTERN)
WHAT = "exactly one email address (name@example.com)"


def is_address(value: str | None) -> bool:
    return bool(value) and len(value) <= MAX_LENGTH and _ADDRESS.fullmatch(value) is not None  # type: ignore[arg-type]


def normalized(address: str) -> str:
    """The form suppressions and dedupe keys compare: surrounding space trimmed, lower case."""
    return address.strip().lower()
