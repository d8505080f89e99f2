"""Write the report: a self-contained report.html (PNGs embedded as base64) and summary.json."""

from __future__ import annotations

import base64
import html
import json
import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from analysis.document import Figure, Paragraph, Section, Table
from ensemble import __version__
from ensemble.io.atomic import atomic_open

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto;
       max-width: 1200px; padding: 0 1rem; color: #1d2330; line-height: 1.45; }
h1 { margin-bottom: 0.2rem; } h2 { border-bottom: 2px solid #d8dee9; padding-bottom: 0.2rem;
       margin-top: 2.5rem; }
.meta { color: #5b6578; font-size: 0.9rem; }
.missing { background: #fff4e5; border-left: 4px solid #f0a020; padding: 0.6rem 1rem; }
.overview td, .overview th { padding: 0.3rem 0.8rem; }
table { border-collapse: collapse; margin: 0.8rem 0; font-size: 0.88rem; }
th, td { border: 1px solid #d8dee9; padding: 0.25rem 0.55rem; text-align: left; }
th { background: #f3f5f9; } tbody tr:nth-child(even) { background: #fafbfc; }
caption { caption-side: top; text-align: left; font-weight: 600; padding: 0.3rem 0; }
.note { color: #5b6578; font-size: 0.82rem; margin-top: -0.4rem; }
figure { margin: 1.2rem 0; } figure img { max-width: 100%; border: 1px solid #e3e7ee; }
figcaption { color: #5b6578; font-size: 0.88rem; }
"""


def _block_html(block) -> str:
    if isinstance(block, Paragraph):
        return f"<p>{html.escape(block.text)}</p>"
    if isinstance(block, Table):
        head = "".join(f"<th>{html.escape(h)}</th>" for h in block.headers)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>"
            for row in block.rows
        )
        note = f'<p class="note">{html.escape(block.note)}</p>' if block.note else ""
        return (
            f"<table><caption>{html.escape(block.title)}</caption><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table>{note}"
        )
    if isinstance(block, Figure):
        data = base64.b64encode(Path(block.path).read_bytes()).decode("ascii")
        return (
            f'<figure><img alt="{html.escape(block.path.name)}" '
            f'src="data:image/png;base64,{data}"><figcaption>{html.escape(block.caption)} '
            f"({html.escape(block.path.name)})</figcaption></figure>"
        )
    raise TypeError(f"unknown block {block!r}")


def render_html(sections: list[Section], inputs: dict[str, str]) -> str:
    """The whole report as one HTML page (no external resources)."""
    overview = "".join(
        f'<tr><td><a href="#{s.key}">{html.escape(s.title)}</a></td><td>'
        + (html.escape(s.headline) if s.available else "<em>not available</em>")
        + "</td></tr>"
        for s in sections
    )
    given = ", ".join(f"{html.escape(k)}: {html.escape(v)}" for k, v in inputs.items())
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>ens analyze report</title><style>{_STYLE}</style></head><body>",
        "<h1>Landmark competition analysis</h1>",
        f'<p class="meta">ens {__version__}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. '
        f"Inputs: {given or 'none'}.</p>",
        f'<table class="overview"><tbody>{overview}</tbody></table>',
    ]
    for section in sections:
        parts.append(f'<section id="{section.key}"><h2>{html.escape(section.title)}</h2>')
        if not section.available:
            parts.append(f'<p class="missing">Not available: {html.escape(section.missing)}</p>')
        parts.extend(_block_html(block) for block in section.blocks)
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _plain(value):
    """JSON-ready copy: numpy to Python, NaN and infinities to None."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def summary_dict(sections: list[Section], inputs: dict[str, str]) -> dict:
    """Every number of the report, per section, for scripts."""
    return _plain(
        {
            "ens_version": __version__,
            "inputs": inputs,
            "sections": {
                s.key: {
                    "available": s.available,
                    "missing": s.missing,
                    "headline": s.headline,
                    "plots": [b.path.name for b in s.blocks if isinstance(b, Figure)],
                    **s.summary,
                }
                for s in sections
            },
        }
    )


def write_report(out_dir: Path, sections: list[Section], inputs: dict[str, str]) -> Path:
    """Write out_dir/report.html and out_dir/summary.json (atomically); return the HTML path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_open(out_dir / "summary.json", "w", encoding="utf-8") as handle:
        json.dump(summary_dict(sections, inputs), handle, indent=1, allow_nan=False)
    report = out_dir / "report.html"
    with atomic_open(report, "w", encoding="utf-8") as handle:
        handle.write(render_html(sections, inputs))
    return report
