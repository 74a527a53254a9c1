"""Running the dbt project against the warehouse.

The dbt profile reads its connection from CSFLOW_DBT_* environment variables
that we derive from the one warehouse URL, so there is a single source of
truth for the connection. One `dbt build` per run, through Prefect's
PrefectDbtRunner (each dbt model becomes a Prefect task inside a flow).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from csflow.config import PROJECT_DIR, Settings
from csflow.warehouse import Warehouse

DBT_PROJECT_DIR = PROJECT_DIR / "dbt_project"


class DbtFailed(RuntimeError):
    """dbt ran but a model or test failed; the message lists which."""


@dataclass
class DbtResult:
    success: bool
    counts: dict[str, int] = field(default_factory=dict)  # status -> nodes
    failures: list[str] = field(default_factory=list)
    built: list[str] = field(default_factory=list)  # relation names built

    def summary(self) -> str:
        parts = [f"{n} {s}" for s, n in sorted(self.counts.items())]
        return ", ".join(parts) or "nothing to do"


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


def _collect(res: object) -> DbtResult:
    """Turn dbt's programmatic result into counts and failure lines."""
    result = DbtResult(success=bool(getattr(res, "success", False)))
    run_results = getattr(res, "result", None)
    exc = getattr(res, "exception", None)
    if exc is not None:
        result.failures.append(str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc))
    for node_result in getattr(run_results, "results", None) or []:
        status = str(getattr(node_result.status, "value", node_result.status))
        result.counts[status] = result.counts.get(status, 0) + 1
        node = node_result.node
        if status in ("error", "fail", "runtime error"):
            message = (node_result.message or "").strip().splitlines()
            result.failures.append(f"{node.resource_type} {node.name}: {message[0] if message else status}")
        elif status == "success" and getattr(node, "resource_type", None) == "model":
            result.built.append(f"{node.schema}.{node.alias or node.name}")
    return result


def run_dbt(warehouse: Warehouse, settings: Settings, args: list[str], *, use_prefect: bool = True) -> DbtResult:
    """Invoke dbt with args (e.g. ["build"]); raise DbtFailed when it fails."""
    from csflow.playbooks import ensure_playbook_schema

    # The project reads the playbook ledger (source ops.playbook_actions) that
    # csflow writes after the build; on a new warehouse it must exist first.
    with warehouse.connected() as engine:
        ensure_playbook_schema(engine)
    env = dbt_environment(warehouse, settings)
    os.environ.update(env)  # dbt's env_var() reads the process environment
    Path(env["DBT_TARGET_PATH"]).mkdir(parents=True, exist_ok=True)
    if use_prefect:
        from dbt.node_types import NodeType
        from prefect_dbt import PrefectDbtRunner, PrefectDbtSettings

        class ModelTaskRunner(PrefectDbtRunner):
            """PrefectDbtRunner with a Prefect task per model (and seed, snapshot), none per test.

            Each node task costs prefect-dbt 0.7 ~0.15 s of CPU under the GIL (its
            thread rebuilds Prefect's settings and API client twice), so our ~280
            data and unit tests added 35-50 s to every build, more than the whole
            10k-account build takes bare (benchmarks/pipeline.py, 10k accounts:
            orchestrated / bare dbt build 2.4 -> 1.1-1.4). Test results still go
            to the flow's log and to DbtResult, and a failing test still fails the
            run. `_call_task` is prefect-dbt's own (private) hook: should it go
            away, every node becomes a task again (slower, not wrong).
            """

            def _call_task(self, task_state, manifest_node, context, enable_assets):
                if manifest_node.resource_type not in (NodeType.Test, NodeType.Unit):
                    super()._call_task(task_state, manifest_node, context, enable_assets)

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

        res = dbtRunner().invoke(
            [*args, "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR)]
        )
    result = _collect(res)
    if not result.success:
        raise DbtFailed(f"dbt {' '.join(args)} failed: " + ("; ".join(result.failures[:5]) or "see dbt logs"))
    return result


@functools.cache
def _project_vars() -> dict:
    import yaml

    return yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text(encoding="utf-8")).get("vars") or {}


def dbt_var(name: str) -> object:
    """A var's default from dbt_project.yml, for Python code that must agree with the models."""
    return _project_vars()[name]


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
