"""raw.trainings: one row per session and invited contact (post_training_survey)."""

from __future__ import annotations

import great_expectations.expectations as gxe

from expectations._base import RunParams, SuiteSpec, known_accounts, rows_from_latest_load, unique_id


def build(run: RunParams) -> list[gxe.Expectation]:
    return [
        # A session has many attendees: the key is the pair.
        *unique_id("training_id", "contact_id"),
        known_accounts(),
        *rows_from_latest_load("trainings", run),
    ]


SUITE = SuiteSpec(name="raw_trainings", table="raw.trainings", build=build)
