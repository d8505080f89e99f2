"""The report's building blocks (paragraphs, tables, figures, sections) and their text form."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Paragraph:
    """A sentence or two of prose."""

    text: str


@dataclass(frozen=True)
class Table:
    """A titled table of already formatted cells."""

    title: str
    headers: list[str]
    rows: list[list[str]]
    note: str = ""


@dataclass(frozen=True)
class Figure:
    """A PNG written beside the report, with a caption."""

    path: Path
    caption: str


Block = Paragraph | Table | Figure


@dataclass
class Section:
    """One report section: its blocks, its numbers for summary.json, or why it could not run."""

    key: str
    title: str
    missing: str | None = None
    headline: str = ""
    blocks: list[Block] = field(default_factory=list)
    summary: dict = field(default_factory=dict)

    @property
    def available(self) -> bool:
        """True when the section ran."""
        return self.missing is None


def fmt(value: float | None, digits: int = 4) -> str:
    """A number with `digits` significant digits ('n/a' for None or NaN)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, int):
        return str(value)
    if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-3):
        return f"{value:.{digits - 1}e}"
    return f"{value:.{digits}g}" if abs(value) < 10**digits else f"{value:.0f}"


def fmt_p(value: float) -> str:
    """A p-value: small ones in scientific notation."""
    if math.isnan(value):
        return "n/a"
    return f"{value:.2e}" if value < 1e-3 else f"{value:.3f}"


def _text_table(table: Table) -> str:
    widths = [len(h) for h in table.headers]
    for row in table.rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = [table.title]
    lines.append("  ".join(h.ljust(w) for h, w in zip(table.headers, widths, strict=True)))
    lines.append("  ".join("-" * w for w in widths))
    for row in table.rows:
        cells = [cell.ljust(w) for cell, w in zip(row, widths, strict=True)]
        lines.append("  ".join(cells).rstrip())
    if table.note:
        lines.append(table.note)
    return "\n".join(lines)


def section_text(section: Section) -> str:
    """The section as plain text for the terminal."""
    parts = [section.title, "=" * len(section.title)]
    if not section.available:
        parts.append(f"not available: {section.missing}")
        return "\n".join(parts)
    for block in section.blocks:
        if isinstance(block, Paragraph):
            parts.append(block.text)
        elif isinstance(block, Table):
            parts.append(_text_table(block))
        else:
            parts.append(f"[plot] {block.path.name}: {block.caption}")
        parts.append("")
    return "\n".join(parts).rstrip() + "\n"


def fmt_line(slope: float, intercept: float, digits: int = 4) -> str:
    """'a x val + b' with the intercept's sign folded in ('1.04 x val - 0.047')."""
    sign = "-" if intercept < 0 else "+"
    return f"{slope:.{digits}g} x val {sign} {abs(intercept):.{digits}g}"
