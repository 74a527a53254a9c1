"""dbt under Prefect: a task per model, none per test (csflow.dbt uses it for pipeline runs).

Kept apart from csflow.dbt so that importing csflow does not import Prefect and dbt.
"""

from __future__ import annotations

from typing import Any

from dbt.node_types import NodeType
from prefect_dbt import PrefectDbtRunner


class ModelTaskRunner(PrefectDbtRunner):
    """PrefectDbtRunner with a Prefect task per model (and seed, snapshot), none per test.

    Each node task costs prefect-dbt 0.7 ~0.15 s of CPU under the GIL (its
    thread rebuilds Prefect's settings and API client twice), so our ~280 data
    and unit tests added 35-50 s to every build, more than the whole
    10k-account build takes bare (benchmarks/pipeline.py, 10k accounts:
    orchestrated / bare dbt build 2.4 -> 1.1-1.4). Test results still go to
    the flow's log and to DbtResult. `_call_task` is prefect-dbt's own
    (private) hook: should it go away, every node becomes a task again
    (slower, not wrong).
    """

    def _call_task(self, task_state: Any, manifest_node: Any, context: Any, enable_assets: Any) -> None:
        if manifest_node.resource_type not in (NodeType.Test, NodeType.Unit):
            super()._call_task(task_state, manifest_node, context, enable_assets)
