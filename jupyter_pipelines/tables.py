"""Tables for the command line that stay readable at 80 columns and in pipes.

A table whose short columns fit (with room for each long column to be folded at least
`FOLD_MIN` wide) prints as a rich table: short columns never wrap, long ones fold. A narrower
console gets one block per row instead: the head columns on the first line, every other column
on its own ``name: value`` line, folded. Cells marked ``whole`` (execution IDs) are never
wrapped, folded or cut, in either layout, so they can be copied.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Console
from rich.table import Table
from rich.text import Text

FOLD_MIN = 24


@dataclass(frozen=True)
class Column:
    name: str
    fold: bool = False      # long free text: folded in a table, its own line in blocks
    head: bool = False      # on the first line of a block
    whole: bool = False     # never wrapped (IDs)
    justify: str = "left"


def print_table(console: Console, title: str, columns: list[Column], rows: list[list]) -> None:
    """``rows`` of strings or `Text` (never markup), one per column; a short ``title``."""
    cells = [[c if isinstance(c, Text) else Text(str(c or "")) for c in row] for row in rows]
    if _fits(console.width, columns, cells):
        table = Table(title=title)
        for i, col in enumerate(columns):
            widest = max([len(col.name)] + [r[i].cell_len for r in cells])
            if col.fold:
                table.add_column(col.name, overflow="fold", min_width=min(FOLD_MIN, widest),
                                 justify=col.justify)
            else:
                table.add_column(col.name, no_wrap=True, min_width=widest, justify=col.justify)
        for row in cells:
            table.add_row(*row)
        console.print(table)
        return
    console.print(Text(title, style="italic"))
    for row in cells:
        heads = [cell for col, cell in zip(columns, row, strict=True) if col.head and cell.plain]
        head = Text("  ").join(heads)
        if head.cell_len > console.width and len(heads) > 1:  # the ID alone, the rest below
            console.print(heads[0], soft_wrap=True)
            head = Text("    ") + Text("  ").join(heads[1:])
        console.print(head, soft_wrap=True)  # the ID first, whole, however narrow the console
        for col, cell in zip(columns, row, strict=True):
            if col.head or not cell.plain:
                continue
            line = Text(f"{col.name}: ", style="dim") + cell
            lines = [line] if col.whole else line.wrap(console, max(20, console.width - 4),
                                                       overflow="fold")
            for part in lines:
                part.rstrip()
                console.print(Text("    ") + part, soft_wrap=True)


def _fits(width: int, columns: list[Column], cells: list[list[Text]]) -> bool:
    need = 3 * len(columns) + 1  # borders and padding
    for i, col in enumerate(columns):
        widest = max([len(col.name)] + [r[i].cell_len for r in cells])
        need += min(FOLD_MIN, widest) if col.fold else widest
    return need <= width
