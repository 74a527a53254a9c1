"""raw.web_visits: pricing and product page interest (high_interest playbook)."""

from __future__ import annotations

from expectations._base import event_suite

SUITE = event_suite("web_visits")
