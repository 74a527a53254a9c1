"""The dbt project stays in step with the landing contract (csflow.contract).

No database needed: the YAML is compared with ENTITIES, and `dbt parse`
(which never connects) checks that the Jinja, refs, sources and generic tests
resolve. The data itself is tested by `dbt build` against PostgreSQL.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.dialects import postgresql

from csflow.contract import ENTITIES, STAGED_BOOKKEEPING, UNKNOWN_ACCOUNT
from csflow.schema import RAW_TABLES

DBT_DIR = Path(__file__).resolve().parents[1] / "dbt_project"
STAGING = DBT_DIR / "models" / "staging"



def pg_type(entity: str, column: str) -> str:
    """The type csflow/schema.py gives a raw column, as dbt's contracts spell it."""
    return RAW_TABLES[entity].c[column].type.compile(dialect=postgresql.dialect()).lower()


def _load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


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


def test_landing_source_declares_exactly_the_contract_tables(landing: dict[str, Any]) -> None:
    assert list(landing) == list(ENTITIES)
    for name, entity in ENTITIES.items():
        table = landing[name]
        assert table.get("description"), name
        assert "columns" not in table, f"{name}: columns live in csflow/contract.py and _landing__docs.md"
        assert table.get("loaded_at_field") == entity.stamped_by, name


def test_every_entity_has_a_staging_model_with_the_contract_columns(staging_models: dict[str, Any]) -> None:
    docs = set(re.findall(r"{%\s*docs\s+(\w+)\s*%}", (STAGING / "_landing__docs.md").read_text()))
    for name, entity in ENTITIES.items():
        model = f"stg_landing__{name}"
        sql = (STAGING / f"{model}.sql").read_text()
        assert f"source('landing', '{name}')" in sql, model
        assert sql.rstrip().endswith("select * from renamed"), model
        for column in entity.columns:  # every rename the contract declares, in the SQL
            if column.staged_as:
                assert f"as {column.staged_as}" in sql, f"{model}.{column.name}"

        node = staging_models[model]
        assert "one row per" in node["description"].lower(), f"{model} states no grain"
        assert node["config"]["contract"]["enforced"] is True, model
        assert "data_tests" not in node, f"{model}: raw inputs are checked by Great Expectations"
        columns = {c["name"]: c for c in node["columns"]}
        bookkeeping = [v for k, v in STAGED_BOOKKEEPING.items() if entity.has_account or k != UNKNOWN_ACCOUNT]
        assert list(columns) == [c.staged_as or c.name for c in entity.columns] + bookkeeping, model
        for column in entity.columns:
            staged = columns[column.staged_as or column.name]
            assert staged["data_type"] == pg_type(name, column.name), f"{model}.{column.name}"
            assert "data_tests" not in staged, f"{model}.{column.name}"
        for staged in columns.values():
            (doc,) = re.findall(r'doc\("(\w+)"\)', staged["description"])
            assert doc in docs, f"{model}.{staged['name']}: no doc block {doc}"
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
