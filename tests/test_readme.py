"""README.md and docs/*.md show only commands that work, and the README only commands a test runs.

Every command in a fenced code block, and every inline code span that starts
with `csflow `, `make ` or `prefect ` (unless it elides with "..."), is split
as the shell would split it (`&&` chains, `VAR=value` prefixes, `# comments`)
and checked against the real thing:

- `csflow ...`: the subcommand exists and its arguments and options parse
  (click's `make_context` on the subcommand, as Typer carries click), so
  renaming an option fails here;
- `make <target>`: the Makefile has the target;
- `prefect deployment run NAME --param k=v`: NAME is a deployment of
  prefect.yaml and k a parameter of the flow it runs.

"Every command in it is run by a test or the demo": RUN_BY names, for each
csflow subcommand the README shows, the tests that run it through the command
line (or the demo that runs the same code), and each option the README gives
it must appear in one of them; the README's `prefect` commands must appear in
tests/test_deployment.py, which runs them. Settings tables must match
csflow.config.Settings, and paths and links in the docs must exist. No
database, no Prefect: parsing only.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import re
import shlex
from dataclasses import dataclass, fields
from pathlib import Path

import pytest
import typer
import yaml
from typer.exceptions import TyperException

from csflow.cli import app
from csflow.config import Settings, env_name

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = [README, *sorted((ROOT / "docs").glob("*.md"))]
PROGRAMS = ("csflow", "make", "prefect")
SEPARATORS = {"&&", "||", ";", "|", "&"}
ENV_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
# A line that runs one of PROGRAMS somewhere (first word, or after a separator).
RUNS_A_PROGRAM = re.compile(
    r"(?:^|&&|\|\||;|\||ExecStart=)\s*(?:[A-Za-z_]\w*=\S*\s+)*(?:\S*/)?(?:csflow|make|prefect)(?:\s|$)"
)
FENCE = re.compile(r"^\s*(```|~~~)")

# Where each csflow subcommand the README shows is run: "tests/<file>.py::<test>"
# (the test must call the command line with that subcommand), or "demo" (the
# demo command runs the same function; see DEMO_RUNS). Options the README
# passes must appear in one of the tests named.
RUN_BY: dict[str, tuple[str, ...]] = {
    "--help": ("tests/test_cli.py::test_help_lists_every_command",),
    "demo": ("make demo",),
    "generate": (
        "tests/test_cli.py::test_generate_writes_the_landing_files",
        "tests/test_cli.py::test_a_misspelt_variable_is_warned_about",
    ),
    "ingest": ("tests/test_cli.py::test_ingest_exits_non_zero_only_for_unusable_files",),
    "run": ("demo", "tests/test_cli.py::test_run_checks_the_set_up_before_it_loads_anything"),
    "doctor": ("tests/test_cli.py::test_doctor_reports_the_warehouse",),
    "sql": ("tests/test_cli.py::test_sql_queries_the_warehouse_as_a_table_csv_or_psql",),
    "docs": ("tests/test_cli.py::test_docs_builds_one_html_file_that_opens_from_disk",),
    "serve": (
        "tests/test_workspace.py::test_csflow_serve_answers_on_its_port",
        "tests/test_cli.py::test_user_errors_are_one_line",
    ),
    "digest": ("tests/test_cli.py::test_the_commands_the_readme_suggests_after_the_demo",),
    "send": (
        "tests/test_cli.py::test_the_commands_the_readme_suggests_after_the_demo",
        "tests/test_faults.py::test_names_with_markup_do_not_break_the_command_line",
    ),
    "outbox": ("tests/test_cli.py::test_the_commands_the_readme_suggests_after_the_demo",),
    "outcome": (
        "tests/test_outcomes.py::test_the_outcome_command_records_and_names_bad_input",
        "tests/test_cli.py::test_the_commands_the_readme_suggests_after_the_demo",
    ),
    "backfill": ("tests/test_cli.py::test_backfill_checks_the_range_then_runs_its_flow",),
    "signals": ("tests/test_signals.py::test_the_commands_print_a_table_and_write_a_report",),
    "backtest": ("tests/test_signals.py::test_the_commands_print_a_table_and_write_a_report",),
    "model": ("tests/test_churn_risk.py::test_training_publishes_a_card_and_the_nightly_scores_use_it",),
    "migrate": ("tests/test_schema.py::test_a_warehouse_of_the_release_before_migrations_upgrades_in_place",),
}
# csflow subcommand -> the helper both it and `csflow demo` call to do the work.
DEMO_RUNS = {"run": "_run"}
# Marks of a test that goes through the command line rather than the functions beneath it.
CLI_CALLS = ("invoke(app", "_csflow(", '"csflow.cli"', "str(csflow)")
# Folders csflow writes, not part of the checkout: paths under them need not exist.
GENERATED = {".csflow", ".venv", "outbox", "landing", "demo_data", "example_landing"}


@dataclass(frozen=True)
class Command:
    doc: str
    line: int
    program: str  # csflow | make | prefect
    args: tuple[str, ...]
    inline: bool = False  # an inline code span in a sentence, not a code block

    def __str__(self) -> str:
        return f"{self.doc}:{self.line}: `{shlex.join([self.program, *self.args])}`"


# --------------------------------------------------------------------------- reading the docs


def code_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) of every line inside a fenced code block; backslash continuations joined."""
    out: list[tuple[int, str]] = []
    fenced, pending, start = False, "", 0
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            continue
        if not pending:
            start = number
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        out.append((start, pending + line))
        pending = ""
    return out


def inline_spans(text: str) -> list[tuple[int, str]]:
    """(line number, text) of inline code spans outside fenced blocks."""
    out = []
    fenced = False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            out += [(number, span) for span in re.findall(r"`([^`\n]+)`", line)]
    return out


def split_commands(doc: str, number: int, text: str, inline: bool = False) -> list[Command]:
    """The csflow/make/prefect commands of one shell line."""
    try:
        tokens = shlex.split(text, comments=True)
    except ValueError as exc:
        pytest.fail(f"{doc}:{number}: cannot split `{text}` as the shell would: {exc}")
    commands, segment = [], []
    for token in [*tokens, "&&"]:
        if token not in SEPARATORS:
            segment.append(token)
            continue
        while segment and ENV_ASSIGNMENT.match(segment[0]) and not segment[0].startswith("ExecStart="):
            segment.pop(0)
        if segment:
            program = segment[0].removeprefix("ExecStart=")
            name = program.rsplit("/", 1)[-1]
            if name in PROGRAMS and not program.endswith("/"):
                commands.append(Command(doc, number, name, tuple(segment[1:]), inline))
        segment = []
    return commands


def commands_in(path: Path) -> list[Command]:
    text = path.read_text(encoding="utf-8")
    doc = str(path.relative_to(ROOT))
    found = []
    for number, line in code_lines(text):
        if RUNS_A_PROGRAM.search(line):
            found += split_commands(doc, number, line)
    for number, span in inline_spans(text):
        if "..." not in span and re.match(r"^(?:[A-Za-z_]\w*=\S*\s+)*(?:csflow|make|prefect) ", span):
            found += split_commands(doc, number, span, inline=True)
    return found


ALL_COMMANDS = [command for path in DOCS for command in commands_in(path)]
README_COMMANDS = [command for command in ALL_COMMANDS if command.doc == "README.md"]


def of(program: str, commands: list[Command] = ALL_COMMANDS) -> list[Command]:
    return [c for c in commands if c.program == program]


# --------------------------------------------------------------------------- csflow


GROUP = typer.main.get_command(app)


def subcommand(args: tuple[str, ...]) -> tuple[list[str], str | None, list[str]]:
    """(options of `csflow` itself, the subcommand, its arguments)."""
    i = 0
    while i < len(args) and args[i].startswith("-"):
        i += 1
    return list(args[:i]), (args[i] if i < len(args) else None), list(args[i + 1 :])


def parse_error(command: Command) -> str | None:
    """Why the command line would refuse this command, or None.

    A sentence may name a command without its arguments (`csflow ingest`
    loads a folder): then only the command's existence is checked.
    """
    group_options, name, rest = subcommand(command.args)
    if command.inline and not rest:
        return None if name is None or name in GROUP.commands else f"no such command {name!r}"
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            if name is None:
                GROUP.make_context("csflow", group_options, resilient_parsing=False)
                return None
            group, path = GROUP, "csflow"
            parent = GROUP.make_context(path, [*group_options, name], resilient_parsing=False)
            while True:
                sub = group.get_command(parent, name)
                if sub is None:
                    return f"no such command {path} {name}; commands: {', '.join(sorted(group.list_commands(parent)))}"
                path = f"{path} {name}"
                if not hasattr(sub, "get_command"):  # a command, not a group of them (`csflow signals ...`)
                    sub.make_context(path, rest, parent=parent, resilient_parsing=False)
                    return None
                options, name, rest = subcommand(tuple(rest))
                if name is None:
                    sub.make_context(path, options, parent=parent, resilient_parsing=False)
                    return f"{path} needs a command"
                group, parent = sub, sub.make_context(path, [*options, name], parent=parent, resilient_parsing=False)
    except typer.Exit as exc:  # --help
        return None if exc.exit_code == 0 else f"exits {exc.exit_code}"
    except TyperException as exc:  # click's UsageError and kin, as Typer carries them
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        return message or "incomplete: it would only print its help"
    return None


def test_the_docs_show_commands_at_all() -> None:
    """The parsing below finds what it should (a guard against checking nothing)."""
    names = {subcommand(c.args)[1] for c in of("csflow", README_COMMANDS)}
    assert {"doctor", "run", "backfill", "outbox", "serve"} <= names, names
    assert {("demo",), ("test",)} <= {c.args for c in of("make", README_COMMANDS)}
    assert of("prefect", README_COMMANDS)


@pytest.mark.parametrize("command", of("csflow"), ids=str)
def test_csflow_commands_parse(command: Command) -> None:
    error = parse_error(command)
    assert error is None, f"{command}: {error}"


def test_a_renamed_option_would_be_caught() -> None:
    assert parse_error(Command("x", 1, "csflow", ("run", "--landing-dir", "landing/"))) is None
    assert "No such option" in (parse_error(Command("x", 1, "csflow", ("run", "--landing", "landing/"))) or "")
    assert "no such command" in (parse_error(Command("x", 1, "csflow", ("rnu",))) or "")
    if "signals" in GROUP.commands:  # a group of commands: its commands' options are checked too
        assert "No such option" in (parse_error(Command("x", 1, "csflow", ("signals", "backfill", "--form", "x"))) or "")
    assert parse_error(Command("x", 1, "csflow", ("outbox", "--resolve", "ID", "sent"))) is not None


# --------------------------------------------------------------------------- make


def make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    return {m for m in re.findall(r"^([A-Za-z0-9_.-]+)\s*:(?!=)", text, flags=re.M) if not m.startswith(".")}


@pytest.mark.parametrize("command", of("make"), ids=str)
def test_make_targets_exist(command: Command) -> None:
    targets = make_targets()
    for arg in command.args:
        if arg.startswith("-") or "=" in arg:
            continue
        assert arg in targets, f"{command}: the Makefile has no target {arg!r} (targets: {', '.join(sorted(targets))})"


# --------------------------------------------------------------------------- prefect


def flow_of(entrypoint: str) -> tuple[str, list[str]]:
    """(flow name, parameter names) of a prefect.yaml entrypoint, read from the source without importing it."""
    file, function = entrypoint.split(":")
    tree = ast.parse((ROOT / file).read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == function:
            name = function
            for decorator in node.decorator_list:
                if isinstance(decorator, ast.Call) and getattr(decorator.func, "id", "") == "flow":
                    for keyword in decorator.keywords:
                        if keyword.arg == "name" and isinstance(keyword.value, ast.Constant):
                            name = keyword.value.value
            parameters = [a.arg for a in [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]]
            return name, parameters
    raise AssertionError(f"prefect.yaml: entrypoint {entrypoint}: no function {function} in {file}")


def deployments() -> dict[str, tuple[str, list[str], dict]]:
    """'<flow>/<deployment>' -> (entrypoint, flow parameters, the deployment's own parameters)."""
    manifest = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    out = {}
    for deployment in manifest["deployments"]:
        flow, parameters = flow_of(deployment["entrypoint"])
        out[f"{flow}/{deployment['name']}"] = (deployment["entrypoint"], parameters, deployment.get("parameters") or {})
    return out


def test_prefect_yaml_gives_its_flows_only_their_own_parameters() -> None:
    found = deployments()
    assert {"run_pipeline/nightly", "send_digests/csm-digests", "send_digests/kpi-report", "backfill/backfill"} <= set(found)
    for name, (entrypoint, parameters, given) in found.items():
        assert set(given) <= set(parameters), f"prefect.yaml: {name} gives {entrypoint} unknown parameters"


def deployment_arguments(args: tuple[str, ...]) -> tuple[str | None, list[str]]:
    """(deployment name, parameter names) of `prefect deployment <verb> ...` arguments."""
    name, params, i = None, [], 2
    while i < len(args):
        arg = args[i]
        if arg in ("--param", "-p") and i + 1 < len(args):
            params.append(args[i + 1].split("=", 1)[0])
            i += 2
            continue
        if arg.startswith("--param="):
            params.append(arg.removeprefix("--param=").split("=", 1)[0])
        elif arg == "--params" and i + 1 < len(args):
            params += list(json.loads(args[i + 1]))
            i += 2
            continue
        elif not arg.startswith("-") and name is None and "/" in arg:
            name = arg
        i += 1
    return name, params


@pytest.mark.parametrize(
    "command", [c for c in of("prefect") if c.args[:1] == ("deployment",)], ids=str
)
def test_prefect_deployment_commands_name_real_deployments_and_parameters(command: Command) -> None:
    found = deployments()
    name, params = deployment_arguments(command.args)
    assert name in found, f"{command}: no deployment {name!r} in prefect.yaml (there are {', '.join(found)})"
    entrypoint, parameters, _ = found[name]
    for param in params:
        assert param in parameters, f"{command}: {entrypoint} has no parameter {param!r} (it has {', '.join(parameters)})"


# --------------------------------------------------------------------------- run by a test or the demo


def source_of(reference: str) -> str:
    """The source of a test function, decorators included (parametrized arguments live there)."""
    file, name = reference.split("::")
    text = (ROOT / file).read_text(encoding="utf-8")
    for node in ast.parse(text).body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            lines = text.splitlines()
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            return "\n".join(lines[first - 1 : node.end_lineno])
    raise AssertionError(f"RUN_BY names {reference}, which does not exist")


def function_calls(function: str) -> set[str]:
    """Names the function of csflow/cli.py calls."""
    tree = ast.parse((ROOT / "csflow" / "cli.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == function:
            return {
                getattr(call.func, "id", getattr(call.func, "attr", ""))
                for call in ast.walk(node)
                if isinstance(call, ast.Call)
            }
    raise AssertionError(f"csflow/cli.py has no function {function}")


def test_run_by_points_at_tests_that_run_the_command_line() -> None:
    for command, where in RUN_BY.items():
        for reference in where:
            if reference == "make demo":
                assert re.search(r"^demo:.*\n\t.*csflow demo", (ROOT / "Makefile").read_text(), flags=re.M)
            elif reference == "demo":
                helper = DEMO_RUNS[command]
                assert helper in function_calls("demo") and helper in function_calls(command), (
                    f"`csflow {command}` and `csflow demo` no longer share {helper}: name a test in RUN_BY"
                )
            else:
                source = source_of(reference)
                assert f'"{command}"' in source, f"{reference} does not run `csflow {command}`"
                assert any(mark in source for mark in CLI_CALLS), f"{reference} does not go through the command line"


@pytest.mark.parametrize("command", of("csflow", README_COMMANDS), ids=str)
def test_every_readme_command_is_run_by_a_test_or_the_demo(command: Command) -> None:
    group_options, name, rest = subcommand(command.args)
    key = name or "--help"
    assert key in RUN_BY, (
        f"{command}: no test runs `csflow {key}`; add one (tests/test_cli.py) and name it in RUN_BY, "
        "or do not suggest the command in the README"
    )
    sources = "\n".join(source_of(r) for r in RUN_BY[key] if "::" in r)
    for option in [*group_options, *rest]:
        if option.startswith("--") and option != "--help":
            flag = option.split("=", 1)[0]
            assert f'"{flag}"' in sources, f"{command}: none of {', '.join(RUN_BY[key])} passes {flag}"


# The Prefect commands of the README (server, work pool, deploy, worker, a deployment run)
# are run, with the same words, by the deployment test.
PREFECT_RUN_BY = "tests/test_deployment.py"


@pytest.mark.parametrize("command", of("prefect", README_COMMANDS), ids=str)
def test_every_readme_prefect_command_is_run_by_the_deployment_test(command: Command) -> None:
    source = (ROOT / PREFECT_RUN_BY).read_text(encoding="utf-8")
    if command.args[:2] == ("deployment", "run"):
        name, params = deployment_arguments(command.args)
        words = [name, *params]
    else:
        words = [arg for arg in command.args if "://" not in arg]
    missing = [word for word in words if f'"{word}"' not in source]
    assert not missing, f"{command}: {PREFECT_RUN_BY} does not run it ({', '.join(map(str, missing))} not found)"


# --------------------------------------------------------------------------- settings, paths, links


def tables(text: str) -> list[list[list[str]]]:
    """Markdown tables as rows of cells (header first, separator left out)."""
    found, current = [], []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            if not all(set(cell) <= set("-: ") for cell in cells):
                current.append(cells)
        elif current:
            found.append(current)
            current = []
    return found


def shown_default(value: object) -> str | None:
    """How a default is written in a settings table; None for an empty one."""
    if value in ("", None, ()):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def settings_rows(path: Path) -> list[list[str]]:
    rows = []
    for table in tables(path.read_text(encoding="utf-8")):
        if table[0][:3] == ["setting", "environment", "default"]:
            rows += table[1:]
    return rows


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_settings_tables_match_the_settings(path: Path) -> None:
    defaults = {f.name: f.default for f in fields(Settings) if f.name != "source"}
    for name, env, default, *_ in settings_rows(path):
        name, env, default = name.strip("`"), env.strip("`"), default
        assert name in defaults, f"{path.name}: {name} is not a setting (csflow/config.py)"
        assert env == env_name(name), f"{path.name}: {name} is read from {env_name(name)}, not {env}"
        expected = shown_default(defaults[name])
        if expected is None:
            assert default.startswith("("), f"{path.name}: {name} has no default; the table says {default}"
        else:
            assert default == f"`{expected}`", f"{path.name}: {name} defaults to {expected!r}; the table says {default}"


def test_the_configuration_reference_lists_every_setting() -> None:
    listed = {row[0].strip("`") for row in settings_rows(ROOT / "docs" / "configuration.md")}
    missing = sorted({f.name for f in fields(Settings)} - {"source"} - listed)
    assert not missing, f"docs/configuration.md does not list {', '.join(missing)}"


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The anchors of a document's headings (not of `#` comments in its code blocks)."""
    found, fenced = set(), False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced and re.match(r"^#{1,6} ", line):
            found.add(slug(line.lstrip("#")))
    return found


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_paths_and_links_exist(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    top = {p.name for p in ROOT.iterdir()}
    for _, span in inline_spans(text):
        if " " in span or any(ch in span for ch in "<>*{}$"):
            continue
        first = span.split("/")[0]
        if first in top and first not in GENERATED and ("/" in span or "." in span):
            assert (ROOT / span).exists(), f"{path.name}: `{span}` does not exist"
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"^[a-z]+://", target):
            continue
        file, _, anchor = target.partition("#")
        linked = (path.parent / file).resolve() if file else path
        assert linked.exists(), f"{path.name}: link to {target}, which does not exist"
        if anchor:
            assert anchor in anchors(linked), f"{path.name}: link to {target}: no such heading in {linked.name}"
