"""Running the dbt project against the warehouse.

The dbt profile reads its connection from CSFLOW_DBT_* environment variables
that we derive from the one warehouse URL, so there is a single source of
truth for the connection; they are set only while dbt runs.

A pipeline run builds in two steps (`build_and_test`): the models with their
unit tests (`dbt build` without data tests), then every data test (`dbt
test`). A data test that fails never stops a model from building: its result,
with its severity (`error` closes the gate, `warn` is reported), goes to the
validation gate beside Great Expectations' checks of the raw inputs. Only a
model that fails to build (or whose unit test fails) fails the run.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from csflow.config import PROJECT_DIR, Settings
from csflow.warehouse import Warehouse

DBT_PROJECT_DIR = PROJECT_DIR / "dbt_project"
FAILED = ("error", "fail", "runtime error")


class DbtFailed(RuntimeError):
    """dbt ran but a model (or a test, when tests are not gated) failed; the message lists which."""


@dataclass
class DataTest:
    """One dbt data test's result, as the validation gate reads it."""

    name: str  # e.g. accepted_range_account_health_health_score__100__0
    kind: str  # the generic test (accepted_range, unique, ...) or "singular"
    model: str  # schema.relation of the model it tests
    column: str | None
    severity: str  # dbt's: error | warn
    status: str  # pass | fail | warn | error
    failures: int | None
    message: str

    @property
    def success(self) -> bool:
        return self.status == "pass"


@dataclass
class DbtResult:
    success: bool
    counts: dict[str, int] = field(default_factory=dict)  # status -> nodes
    failures: list[str] = field(default_factory=list)  # nodes that failed to build (or ran an erroring test)
    built: list[str] = field(default_factory=list)  # relation names built
    data_tests: list[DataTest] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{n} {s}" for s, n in sorted(self.counts.items())]
        return ", ".join(parts) or "nothing to do"

    def merged(self, other: DbtResult) -> DbtResult:
        counts = dict(self.counts)
        for status, n in other.counts.items():
            counts[status] = counts.get(status, 0) + n
        return DbtResult(
            self.success and other.success, counts, self.failures + other.failures,
            self.built + other.built, self.data_tests + other.data_tests,
        )


def dbt_environment(warehouse: Warehouse, settings: Settings) -> dict[str, str]:
    """Environment for dbt: the connection plus where dbt writes its files."""
    state = settings.state_dir.resolve()
    return {
        **warehouse.dbt_env(settings.dbt_threads),
        "DBT_PROFILES_DIR": str(DBT_PROJECT_DIR),
        "DBT_PROJECT_DIR": str(DBT_PROJECT_DIR),
        "DBT_TARGET_PATH": str(state / "dbt" / "target"),
        "DBT_LOG_PATH": str(state / "dbt" / "logs"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DO_NOT_TRACK": "1",
    }


@contextlib.contextmanager
def _environment(env: dict[str, str]) -> Iterator[None]:
    """dbt's env_var() reads the process environment: set it for the invocation only,
    so the database password does not stay where every later child process sees it."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _data_test(node_result: Any) -> DataTest:
    node = node_result.node
    meta = getattr(node, "test_metadata", None)
    attached = getattr(node, "attached_node", None) or ""
    message = (node_result.message or "").strip().splitlines()
    return DataTest(
        name=node.name,
        kind=meta.name if meta is not None else "singular",
        model=attached.split(".")[-1] if attached else "",
        column=getattr(node, "column_name", None),
        severity=str(getattr(node.config, "severity", "error")).lower(),
        status=str(getattr(node_result.status, "value", node_result.status)),
        failures=getattr(node_result, "failures", None),
        message=message[0] if message else "",
    )


def _collect(res: object, gate_tests: bool) -> DbtResult:
    """Turn dbt's programmatic result into counts, failures and data test results."""
    from dbt.node_types import NodeType

    result = DbtResult(success=bool(getattr(res, "success", False)))
    exc = getattr(res, "exception", None)
    if exc is not None:
        result.failures.append(str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc))
    for node_result in getattr(getattr(res, "result", None), "results", None) or []:
        status = str(getattr(node_result.status, "value", node_result.status))
        result.counts[status] = result.counts.get(status, 0) + 1
        node = node_result.node
        if node.resource_type == NodeType.Test:
            result.data_tests.append(_data_test(node_result))
            if gate_tests:
                continue
        if status in FAILED:
            message = (node_result.message or "").strip().splitlines()
            result.failures.append(f"{node.resource_type} {node.name}: {message[0] if message else status}")
        elif status == "success" and node.resource_type == NodeType.Model:
            result.built.append(f"{node.schema}.{node.alias or node.name}")
    return result


def run_dbt(
    warehouse: Warehouse,
    settings: Settings,
    args: list[str],
    *,
    use_prefect: bool = True,
    dbt_vars: dict[str, Any] | None = None,
    gate_tests: bool = False,
) -> DbtResult:
    """Invoke dbt with args (e.g. ["build"]); raise DbtFailed when a node fails.

    gate_tests: data test results are the validation gate's business (they
    are returned, never raised). dbt_vars: --vars for this invocation.
    """
    env = dbt_environment(warehouse, settings)
    Path(env["DBT_TARGET_PATH"]).mkdir(parents=True, exist_ok=True)
    if dbt_vars:
        args = [*args, "--vars", json.dumps(dbt_vars)]
    with _environment(env):
        if use_prefect:
            from prefect_dbt import PrefectDbtSettings

            from csflow.dbt_tasks import ModelTaskRunner

            runner = ModelTaskRunner(
                settings=PrefectDbtSettings(
                    project_dir=DBT_PROJECT_DIR,
                    profiles_dir=DBT_PROJECT_DIR,
                    target_path=Path(env["DBT_TARGET_PATH"]),
                ),
                raise_on_failure=False,
            )
            res = runner.invoke(args)
        else:
            from dbt.cli.main import dbtRunner

            res = dbtRunner().invoke([*args, "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR)])
    result = _collect(res, gate_tests)
    if result.failures or (not result.success and not gate_tests):
        raise DbtFailed(f"dbt {' '.join(args)} failed: " + ("; ".join(result.failures[:5]) or "see dbt logs"))
    return result


def build_and_test(
    warehouse: Warehouse, settings: Settings, *, use_prefect: bool = True, dbt_vars: dict[str, Any] | None = None
) -> DbtResult:
    """Every model (and its unit tests), then every data test, for the validation gate."""
    built = run_dbt(warehouse, settings, ["build", "--exclude", "test_type:data"], use_prefect=use_prefect, dbt_vars=dbt_vars)
    tested = run_dbt(
        warehouse, settings, ["test", "--select", "test_type:data"], use_prefect=use_prefect, dbt_vars=dbt_vars,
        gate_tests=True,
    )
    return built.merged(tested)


@functools.cache
def project_vars() -> dict[str, Any]:
    """The vars of dbt_project.yml with their defaults: the one place Python reads them."""
    import yaml

    return yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text(encoding="utf-8")).get("vars") or {}


def dbt_var(name: str) -> Any:
    """A var's default from dbt_project.yml, for Python code that must agree with the models."""
    return project_vars()[name]


def mart_models() -> dict[str, set[str] | None]:
    """The models of schema marts (dbt_project/models/marts) and their declared columns
    (None for a model whose YAML declares none), read from the project's files."""
    import yaml

    folder = DBT_PROJECT_DIR / "models" / "marts"
    models: dict[str, set[str] | None] = {path.stem: None for path in folder.rglob("*.sql")}
    for path in folder.rglob("*.yml"):
        for model in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("models") or []:
            if model.get("name") in models and model.get("columns"):
                models[model["name"]] = {c["name"] for c in model["columns"]}
    return models


def relation_counts(engine: sa.Engine, schemas: tuple[str, ...]) -> dict[str, int]:
    """Row counts of every table and view in the given schemas, for summaries."""
    with engine.connect() as conn:
        names = conn.execute(
            sa.text(
                "select table_schema, table_name from information_schema.tables "
                "where table_schema = any(:schemas) order by 1, 2"
            ),
            {"schemas": list(schemas)},
        ).all()
        counts = {}
        for schema, table in names:
            ident = f'"{schema}"."{table}"'
            counts[f"{schema}.{table}"] = int(conn.execute(sa.text(f"select count(*) from {ident}")).scalar_one())
    return counts
