"""Terminal output shared by the commands: data is printed as text, never read as Rich markup."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text


def cells(*values: Any) -> list[Any]:
    """Table cells from data: printed as they are, never read as Rich markup (`[/]` in a name)."""
    return [Text("" if v is None else str(v)) for v in values]


def files_table(title: str, *extra: str) -> Table:
    """Per landing file counts; the file name is never cut, the note wraps (80 columns)."""
    table = Table(title=title)
    table.add_column("file", no_wrap=True)
    for name in ("loaded", "rejected", "dupes", "unknown acct", *extra):
        table.add_column(name, justify="right")
    table.add_column("note", overflow="fold")
    return table
