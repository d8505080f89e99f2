"""The section registry: one list for `ens analyze -o REPORT`, its subcommands and summary.json."""

from __future__ import annotations

import json

from click.testing import CliRunner

from analysis.sections.registry import DEFAULTS, SECTIONS, option
from ensemble.cli import cli
from ensemble.cli.analyze import analyze


def test_every_section_is_a_subcommand_with_its_options() -> None:
    assert sorted(analyze.commands) == sorted(spec.name for spec in SECTIONS)
    for spec in SECTIONS:
        params = {param.name for param in analyze.commands[spec.name].params}
        assert set(spec.options) <= params
        assert ("output" in params) == bool(spec.writes_files)


def test_options_fall_back_to_their_declared_defaults() -> None:
    assert option({"alpha": None}, "alpha") == DEFAULTS["alpha"]
    assert option({"alpha": 0.05}, "alpha") == 0.05
    assert option({}, "runs") is None


def test_the_report_has_one_summary_entry_per_section_in_order(tmp_path) -> None:
    result = CliRunner().invoke(cli, ["analyze", "-o", str(tmp_path / "report")])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert list(summary["sections"]) == [spec.name for spec in SECTIONS]
