"""raw.email_events: marketing engagement (cross-sell clicks)."""

from __future__ import annotations

from expectations._base import event_suite

SUITE = event_suite("email_events")
