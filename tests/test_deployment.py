"""prefect.yaml end to end, with real processes: a Prefect server, `prefect deploy
--all`, a process worker on the `csflow-local` pool, and a run of the nightly and
the kpi-report deployments against a fresh database on the session's embedded
PostgreSQL.

Every process runs in its own process group and is stopped (with everything it
started) when the test ends, pass or fail. Their output goes to files in
tmp_path; a failed assertion quotes the tail of each.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import psutil
import pytest
import sqlalchemy as sa

from csflow.demo import generate
from csflow.warehouse import Warehouse

pytestmark = pytest.mark.timeout(400)

PROJECT_DIR = Path(__file__).resolve().parents[1]
PREFECT = str(Path(sys.executable).with_name("prefect"))
POOL = "csflow-local"
AS_OF = date(2026, 3, 31)
# flow name/deployment name -> cron of its one schedule (None: started by hand)
DEPLOYMENTS = {
    "run_pipeline/nightly": "0 2 * * *",
    "send_digests/csm-digests": "30 7 * * *",
    "send_digests/kpi-report": "0 8 * * 1",
    "backfill/backfill": None,
    "train_churn_model/weekly": "0 4 * * 0",
}
SERVER_START_TIMEOUT = 90
CLI_TIMEOUT = 120
RUN_TIMEOUT = 240


@dataclass
class Process:
    """A background process in its own process group, its output in a file."""

    name: str
    log: Path
    popen: subprocess.Popen[bytes]

    @classmethod
    def start(cls, name: str, args: list[str], env: dict[str, str], log: Path, cwd: Path | None = None) -> Process:
        with open(log, "wb") as out:
            popen = subprocess.Popen(
                args,
                env=env,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return cls(name, log, popen)

    def tail(self, lines: int = 80) -> str:
        text = self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""
        return f"--- last {lines} lines of {self.name} ({self.log}) ---\n" + "\n".join(text.splitlines()[-lines:])

    def stop(self, grace: float = 15) -> None:
        """SIGTERM the process group and every descendant (flow runs get sessions of their own), then SIGKILL."""
        try:
            family = [psutil.Process(self.popen.pid), *psutil.Process(self.popen.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            family = []
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, sig)
            for proc in family:
                with contextlib.suppress(psutil.NoSuchProcess):
                    proc.send_signal(sig)
            _, alive = psutil.wait_procs(family, timeout=grace if sig == signal.SIGTERM else 5)
            if not alive:
                break
        self.popen.wait(timeout=5)


@dataclass
class PrefectApi:
    url: str
    env: dict[str, str]  # environment for CLI calls and the worker: PREFECT_HOME, PREFECT_API_URL, ...
    tmp: Path
    processes: list[Process] = field(default_factory=list)

    def logs(self) -> str:
        return "\n\n".join(p.tail() for p in self.processes)

    def cli(self, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
        """Run the prefect CLI to completion; a non-zero exit fails the test with its output and the logs."""
        name = "-".join(a for a in args[:3] if not a.startswith("-"))
        log = self.tmp / f"cli-{name}.log"
        with open(log, "wb") as out:
            result = subprocess.run(
                [PREFECT, *args],
                env=env or self.env,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=CLI_TIMEOUT,
                start_new_session=True,
            )
        output = log.read_text(encoding="utf-8", errors="replace")
        assert result.returncode == 0, (
            f"prefect {' '.join(args)} exited {result.returncode}:\n{output}\n{null_hint(output)}\n{self.logs()}"
        )
        return output


def null_hint(output: str) -> str:
    """Prefect 3.8's client sends explicit nulls ("limit": null) that FastAPI 0.151+ rejects with 422."""
    if "422 Unprocessable Entity" not in output or "'input': None" not in output:
        return ""
    import fastapi
    import prefect

    return (
        f"HINT: the server rejected a null its own client sent (prefect {prefect.__version__}, fastapi "
        f"{fastapi.__version__}); FastAPI 0.151 and later validate an explicit null against the parameter's "
        "type instead of using its default: pin fastapi<0.151.\n"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def base_env(prefect_home: Path) -> dict[str, str]:
    """This process's environment without any PREFECT_* or CSFLOW_* setting, plus a private PREFECT_HOME."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "CSFLOW_"))}
    env.update(
        PREFECT_HOME=str(prefect_home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
        PYTHONUNBUFFERED="1",
    )
    return env


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture
def prefect_api(tmp_path: Path) -> Iterator[PrefectApi]:
    """A real `prefect server start` on a free localhost port, with its own home and SQLite database."""
    home = tmp_path / "prefect-home"
    home.mkdir()
    env = base_env(home)
    env["PREFECT_API_DATABASE_CONNECTION_URL"] = f"sqlite+aiosqlite:///{home / 'prefect.db'}"
    processes: list[Process] = []
    try:
        for attempt in range(3):  # another process may take the free port before the server binds it
            port = free_port()
            url = f"http://127.0.0.1:{port}/api"
            server = Process.start(
                "prefect server",
                # No scheduler: the schedules must not start runs of their own while the test runs.
                [
                    PREFECT,
                    "server",
                    "start",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--no-ui",
                    "--no-scheduler",
                    "--no-late-runs",
                ],
                env,
                tmp_path / f"server-{attempt}.log",
            )
            processes.append(server)
            deadline = time.monotonic() + SERVER_START_TIMEOUT
            while server.popen.poll() is None and not healthy(url) and time.monotonic() < deadline:
                time.sleep(0.5)
            if healthy(url):
                break
            if server.popen.poll() is None:
                pytest.fail(f"prefect server not healthy after {SERVER_START_TIMEOUT}s\n{server.tail()}")
        else:
            pytest.fail("prefect server exited at start three times\n" + "\n\n".join(p.tail() for p in processes))
        api_env = {k: v for k, v in env.items() if k != "PREFECT_API_DATABASE_CONNECTION_URL"}
        api_env["PREFECT_API_URL"] = url
        api = PrefectApi(url, api_env, tmp_path, [server])
        yield api
        processes += api.processes[1:]  # the worker
    finally:
        for process in reversed(processes):  # the worker before the server
            process.stop()


async def read_deployments(url: str) -> dict[str, Any]:
    from prefect.client.orchestration import PrefectClient

    async with PrefectClient(url) as client:
        return {name: await client.read_deployment_by_name(name) for name in DEPLOYMENTS}


async def run_deployment(url: str, name: str, parameters: dict[str, Any], timeout: float) -> Any:
    """Start a run of the deployment, wait until it ends (or timeout), return the flow run as read afterwards."""
    from prefect.client.orchestration import PrefectClient
    from prefect.deployments.flow_runs import arun_deployment

    async with PrefectClient(url) as client:
        run = await arun_deployment(
            name, client=client, parameters=parameters, timeout=timeout, poll_interval=2, as_subflow=False
        )
        return await client.read_flow_run(run.id)


def test_deploy_all_and_run_on_a_worker(warehouse: Warehouse, prefect_api: PrefectApi, tmp_path: Path) -> None:
    api = prefect_api

    # 1. The pool and every deployment of prefect.yaml, as its header says to create them.
    api.cli("work-pool", "create", POOL, "--type", "process")
    deploy_env = {**api.env, "CSFLOW_PROJECT_DIR": str(PROJECT_DIR)}
    api.cli("--no-prompt", "deploy", "--all", env=deploy_env, cwd=PROJECT_DIR)

    deployments = asyncio.run(read_deployments(api.url))
    for name, cron in DEPLOYMENTS.items():
        deployment = deployments[name]
        assert deployment.work_pool_name == POOL, name
        assert "csflow" in deployment.tags, name
        schedules = [(s.schedule.cron, s.schedule.timezone, s.active) for s in deployment.schedules]
        assert schedules == ([(cron, "Asia/Tokyo", True)] if cron else []), name
        # Flow runs start in the checkout named at deploy time.
        assert deployment.pull_steps == [
            {"prefect.deployments.steps.set_working_directory": {"directory": str(PROJECT_DIR)}}
        ], name
    assert deployments["run_pipeline/nightly"].parameters == {"send": True}
    assert deployments["send_digests/kpi-report"].parameters == {"csm_digests": False, "kpi_report": True}

    # 2. A worker whose flow runs use a fresh database and write under tmp_path.
    landing = tmp_path / "landing"
    written = generate(landing, accounts=40, seed=3, as_of=AS_OF)
    outbox = tmp_path / "outbox"
    config = tmp_path / "csflow.yml"  # not the checkout's csflow.yml, which a developer may have edited
    config.write_text("timezone: Asia/Tokyo\n", encoding="utf-8")
    # No CSFLOW_PROJECT_DIR here: the deployments carry the directory resolved at deploy time.
    worker_env = {
        **api.env,
        "CSFLOW_CONFIG": str(config),
        "CSFLOW_DATABASE_URL": warehouse.url.render_as_string(hide_password=False),
        "CSFLOW_STATE_DIR": str(tmp_path / "state"),
        "CSFLOW_OUTBOX_DIR": str(outbox),
        "CSFLOW_EMAIL_BACKEND": "file",
        "PREFECT_WORKER_QUERY_SECONDS": "2",
    }
    api.processes.append(
        Process.start(
            "prefect worker",
            [PREFECT, "worker", "start", "--pool", POOL, "--name", "csflow-test-worker"],
            worker_env,
            tmp_path / "worker.log",
            cwd=tmp_path,
        )
    )

    # 3. One nightly run, as `prefect deployment run run_pipeline/nightly --param ...` would start it.
    started = time.monotonic()
    parameters = {"as_of": AS_OF.isoformat(), "landing_dir": str(landing)}
    run = asyncio.run(run_deployment(api.url, "run_pipeline/nightly", parameters, RUN_TIMEOUT))
    seconds = time.monotonic() - started
    assert run.state is not None and run.state.is_completed(), (
        f"nightly run {run.name} is {run.state and run.state.type.value} after {seconds:.0f}s: "
        f"{run.state and run.state.message}\n\n{api.logs()}"
    )
    assert run.parameters == {**parameters, "send": True}

    # 4. The weekly KPI report on the same worker: it rebuilds playbook_effectiveness, which
    # the nightly build made before its playbooks fired, and mails the report.
    started = time.monotonic()
    report = asyncio.run(run_deployment(api.url, "send_digests/kpi-report", {"as_of": AS_OF.isoformat()}, RUN_TIMEOUT))
    seconds = time.monotonic() - started
    assert report.state is not None and report.state.is_completed(), (
        f"kpi-report run {report.name} is {report.state and report.state.type.value} after {seconds:.0f}s: "
        f"{report.state and report.state.message}\n\n{api.logs()}"
    )

    engine = warehouse.engine()
    try:
        with engine.connect() as conn:

            def count(table: str) -> int:
                return conn.execute(sa.text(f"select count(*) from {table}")).scalar_one()

            assert count("raw.accounts") == written["accounts"]
            for mart in (
                "marts.renewal_windows",
                "marts.account_health",
                "marts.kpi_monthly",
                "marts.playbook_effectiveness",
            ):
                assert count(mart) > 0, f"{mart} is empty\n\n{api.logs()}"
            assert count("ops.playbook_actions") > 0
            assert count("ops.outbox where kind = 'report'") == 1
            sent = count("ops.outbox where status = 'sent'")
            assert count("ops.outbox where status <> 'sent'") == 0
    finally:
        engine.dispose()
    emails = sorted(outbox.glob("*.eml"))
    assert len(emails) == sent, f"{len(emails)} .eml files for {sent} sent messages in {outbox}"
    assert (outbox / "index.html").is_file()
    assert (tmp_path / "state" / "reports" / "kpi-report-2026-03-31.html").is_file()
