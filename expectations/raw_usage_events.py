"""raw.usage_events: the largest table (millions of rows), so only checks GX
turns into one aggregate SQL pass: no per-row queries."""

from __future__ import annotations

from expectations._base import event_suite

SUITE = event_suite("usage_events")
