"""What a pipeline run did, in one object: the flow returns it, the Prefect
artifact and `csflow run` render it, a backfill reads it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

    from csflow.dbt import DbtResult
    from csflow.ingest import IngestReport
    from csflow.outbox import DeliveryReport
    from csflow.outcomes import OutcomeImport
    from csflow.playbooks import PlayResult
    from csflow.validation import ValidationReport


@dataclass
class RunSummary:
    as_of: date
    ingested: bool  # False: a backfill loaded the landing folder for an earlier date
    ingest: IngestReport
    outcomes: OutcomeImport | None
    dbt: DbtResult
    validation: ValidationReport
    playbooks: list[PlayResult]
    past_date: bool  # True: every play held (a past date in a backfill)
    sent: bool  # False: messages queued, not delivered
    delivery: DeliveryReport
    timings: dict[str, float] = field(default_factory=dict)  # stage -> seconds
    data_docs: str | None = None

    @property
    def gate_open(self) -> bool:
        return self.validation.gate_open

    @property
    def fired(self) -> int:
        return sum(p.fired for p in self.playbooks)

    def held(self, reason: str) -> int:
        return sum(p.held.get(reason, 0) for p in self.playbooks)

    @property
    def rejected_files(self) -> list[str]:
        return [f.file for f in self.ingest.unusable]

    def _delivery_text(self) -> str:
        return self.delivery.line() if self.sent else "not sent in this run (send=False): queued in ops.outbox"

    def markdown(self) -> str:
        """The Prefect artifact."""
        lines = [f"# csflow run for {self.as_of}", ""]
        if self.ingest.files or not self.ingested:
            lines += ["## Ingest", ""]
        if not self.ingested:
            lines.append("(skipped: the landing folder was loaded earlier in this backfill)")
        if self.ingest.files:
            lines += ["| file | loaded | rejected | duplicates | unknown account |", "|---|---|---|---|---|"]
        for f in self.ingest.files:
            note = f" ({_md(f.message)})" if f.status == "rejected" else ""
            lines.append(
                f"| {_md(f.file)}{note} | {f.rows_loaded} | {f.rows_rejected} | {f.rows_duplicate} | {f.rows_unknown_account} |"
            )
        if self.outcomes:
            o = self.outcomes
            lines += ["", f"Outcomes: {o.recorded} recorded, {o.unchanged} unchanged, {len(o.rejects)} rejected"]
        lines += ["", f"## dbt build\n\n{self.dbt.summary()}", "", self.validation.summary_markdown(), ""]
        lines += ["## Playbooks", ""]
        if self.past_date:
            lines += ["Plays held: a past date in a backfill (nobody is told late).", ""]
        lines += ["| playbook | fired | messages | tasks | held (customer email) |", "|---|---|---|---|---|"]
        for p in self.playbooks:
            held = "; ".join(f"{n}: {why}" for why, n in p.held.items())
            lines.append(f"| {p.playbook} | {p.fired} | {p.messages} | {p.tasks} | {_md(held)} |")
        lines += ["", f"## Delivery\n\n{self._delivery_text()}"]
        lines += ["", "## Stage times (s)", "", " · ".join(f"{k} {v:.1f}" for k, v in self.timings.items())]
        return "\n".join(lines)

    def print(self, console: Console) -> None:
        """`csflow run`'s output: data printed as text, never read as markup."""
        from rich.table import Table
        from rich.text import Text

        from csflow.terminal import cells, files_table

        files = files_table(f"Run for {self.as_of}")
        for f in self.ingest.files:
            files.add_row(
                *cells(f.file, f"{f.rows_loaded:,}", f"{f.rows_rejected:,}", f"{f.rows_duplicate:,}",
                       f"{f.rows_unknown_account:,}", f.message),
                style="red" if f.status == "rejected" else None,
            )
        console.print(files)
        console.print(Text(f"dbt build: {self.dbt.summary()}"))
        v = self.validation
        gate = "[green]open[/]" if v.gate_open else "[bold red]CLOSED: no customer email; the data team is alerted[/]"
        console.print(
            f"validation gate: {gate} ({len(v.critical_failures)} critical, {len(v.warning_failures)} warning failures)"
        )
        if v.after_as_of:
            console.print(Text(f"rows after as_of, not used by this run: {v.after_as_of_text()}"))
        plays = Table(title="Playbooks")  # play names whole; the reasons held fold (80 columns)
        plays.add_column("playbook", no_wrap=True)
        for name in ("fired", "messages", "tasks"):
            plays.add_column(name, justify="right", no_wrap=True)
        plays.add_column("held", overflow="fold")
        for p in self.playbooks:
            plays.add_row(*cells(p.playbook, p.fired, p.messages, p.tasks, "; ".join(f"{n} {w}" for w, n in p.held.items())))
        console.print(plays)
        console.print(Text(f"delivery: {self._delivery_text()}"))
        if self.data_docs:
            console.print(Text(f"Data Docs: {self.data_docs}"))


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
