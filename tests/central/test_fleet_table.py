"""`classroom-central fleet` lines its columns up in a terminal, Chinese room names included."""

from __future__ import annotations

from wcwidth import wcswidth

from central.cli import format_table


def _starts(line: str, cells: list[str]) -> list[int]:
    """The display column each cell starts at in `line`."""
    out, at = [], 0
    for cell in cells:
        at = line.index(cell, at)
        out.append(wcswidth(line[:at]))
        at += len(cell)
    return out


def test_columns_line_up_by_display_width() -> None:
    rows = [
        ("east", "r101", "高一(1)班", "online"),
        ("east", "r102", "lab", "lost"),
        ("west", "r2", "物理实验室", "offline"),
    ]
    lines = format_table(("SITE", "AGENT", "ROOM", "STATE"), rows).splitlines()
    columns = {
        tuple(_starts(line, list(cells)))
        for line, cells in zip(lines, [("SITE", "AGENT", "ROOM", "STATE"), *rows], strict=True)
    }
    assert len(columns) == 1, lines  # every STATE starts at the same column, after a 10-column 物理实验室
    assert columns.pop()[3] == wcswidth("west  r2     物理实验室  ")
