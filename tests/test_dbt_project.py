"""The dbt project stays in step with the landing contract (csflow.contract).

No database needed: the YAML is compared with ENTITIES, and `dbt parse`
(which never connects) checks that the Jinja, refs, sources and generic tests
resolve. The data itself is tested by `dbt build` against PostgreSQL.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from csflow.contract import ENTITIES

DBT_DIR = Path(__file__).resolve().parents[1] / "dbt_project"
STAGING = DBT_DIR / "models" / "staging"

# Bookkeeping columns ingest adds to raw tables, and their staging names.
RAW_BOOKKEEPING = {"_load_id": "load_id", "_line": "source_line"}
RAW_UNKNOWN_ACCOUNT = {"_unknown_account": "is_unknown_account"}
# Staging renames of contract columns (is_ prefix for booleans).
STAGING_RENAMES = {
    ("contracts", "auto_renew"): "is_auto_renew",
    ("trainings", "attended"): "is_attended",
}
PG_DATA_TYPES = {
    "text": "text",
    "integer": "integer",
    "numeric": "numeric",
    "date": "date",
    "timestamptz": "timestamp with time zone",
    "boolean": "boolean",
}


def _load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def _tests(node: dict[str, Any]) -> dict[str, Any]:
    """Map test name -> its arguments (None for argument-less tests)."""
    out: dict[str, Any] = {}
    for test in node.get("data_tests", []) or []:
        if isinstance(test, str):
            out[test] = None
        else:
            ((name, body),) = test.items()
            out[name] = (body or {}).get("arguments", {})
    return out


@pytest.fixture(scope="module")
def landing() -> dict[str, dict[str, Any]]:
    sources = _load(STAGING / "_landing__sources.yml")["sources"]
    (source,) = [s for s in sources if s["name"] == "landing"]
    assert source["schema"] == "raw"
    return {t["name"]: t for t in source["tables"]}


@pytest.fixture(scope="module")
def staging_models() -> dict[str, dict[str, Any]]:
    models = _load(STAGING / "_staging__models.yml")["models"]
    return {m["name"]: m for m in models}


def test_landing_source_declares_exactly_the_contract(landing: dict[str, Any]) -> None:
    assert list(landing) == list(ENTITIES)
    for name, entity in ENTITIES.items():
        columns = {c["name"]: c for c in landing[name]["columns"]}
        expected = entity.column_names + list(RAW_BOOKKEEPING)
        if entity.has_account:
            expected += list(RAW_UNKNOWN_ACCOUNT)
        assert list(columns) == expected, name
        for col in entity.columns:
            declared = columns[col.name]
            assert declared.get("description"), f"{name}.{col.name} has no description"
            assert declared.get("data_type") == col.pg_type, f"{name}.{col.name}"
        assert all(c.get("description") for c in columns.values()), name


def test_landing_source_tests_keys_and_closed_values(landing: dict[str, Any]) -> None:
    for name, entity in ENTITIES.items():
        table = landing[name]
        columns = {c["name"]: _tests(c) for c in table["columns"]}
        if len(entity.key) == 1:
            assert {"unique", "not_null"} <= set(columns[entity.key[0]]), name
        if name == "trainings":
            combo = _tests(table)["unique_combination_of_columns"]
            assert tuple(combo["combination_of_columns"]) == entity.key
        for col in entity.columns:
            accepted = columns[col.name].get("accepted_values")
            if col.allowed:
                assert accepted and tuple(accepted["values"]) == col.allowed, (
                    f"{name}.{col.name}"
                )
            else:
                assert accepted is None, f"{name}.{col.name}"


def test_every_entity_has_a_staging_model(staging_models: dict[str, Any]) -> None:
    for name, entity in ENTITIES.items():
        model = f"stg_landing__{name}"
        sql = (STAGING / f"{model}.sql").read_text()
        assert f"source('landing', '{name}')" in sql, model
        assert sql.rstrip().endswith("select * from renamed"), model

        node = staging_models[model]
        assert "one row per" in node["description"].lower(), f"{model} states no grain"
        assert node["config"]["contract"]["enforced"] is True, model
        columns = {c["name"]: c for c in node["columns"]}
        expected = [STAGING_RENAMES.get((name, c), c) for c in entity.column_names]
        expected += list(RAW_BOOKKEEPING.values())
        if entity.has_account:
            expected += list(RAW_UNKNOWN_ACCOUNT.values())
        assert list(columns) == expected, model
        for col in entity.columns:
            staged = columns[STAGING_RENAMES.get((name, col.name), col.name)]
            assert staged["data_type"] == PG_DATA_TYPES[col.pg_type], (
                f"{model}.{col.name}"
            )

        if len(entity.key) == 1:
            assert {"unique", "not_null"} <= set(_tests(columns[entity.key[0]])), model
        else:
            combo = _tests(node)["unique_combination_of_columns"]
            assert tuple(combo["combination_of_columns"]) == entity.full_key, model
    assert "stg_ops__run_context" in staging_models


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run `dbt parse` with dummy connection settings; parse never connects."""
    out = tmp_path_factory.mktemp("dbt")
    env = {
        **os.environ,
        "DO_NOT_TRACK": "1",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "CSFLOW_DBT_HOST": "localhost",
        "CSFLOW_DBT_PORT": "5432",
        "CSFLOW_DBT_USER": "csflow",
        "CSFLOW_DBT_PASSWORD": "",
        "CSFLOW_DBT_DBNAME": "csflow",
    }
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from dbt.cli.main import cli; cli()",
            "parse",
            "--project-dir", str(DBT_DIR),
            "--profiles-dir", str(DBT_DIR),
            "--target-path", str(out / "target"),
            "--log-path", str(out / "logs"),
            "--no-partial-parse",
        ],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads((out / "target" / "manifest.json").read_text())


def test_dbt_parse_succeeds(manifest: dict[str, Any]) -> None:
    models = {
        n["name"]: n
        for n in manifest["nodes"].values()
        if n["resource_type"] == "model"
    }
    for name in ENTITIES:
        node = models[f"stg_landing__{name}"]
        assert node["config"]["materialized"] == "view"
        assert node["schema"] == "staging"  # verbatim, not public_staging
        assert node["depends_on"]["nodes"] == [f"source.csflow.landing.{name}"]
    assert models["stg_ops__run_context"]["depends_on"]["nodes"] == [
        "source.csflow.ops.run_context"
    ]
    # Only staging models may read sources (conventions.md, dbt).
    for node in models.values():
        if any(d.startswith("source.") for d in node["depends_on"]["nodes"]):
            assert node["fqn"][1] == "staging", node["name"]
