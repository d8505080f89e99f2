"""`ensemble` and `analysis` import without torch (fast start-up for blend/analyze/score)."""

from __future__ import annotations

import subprocess
import sys

_PROBE = """
import importlib, pkgutil, sys
for package in ("ensemble", "analysis"):
    module = importlib.import_module(package)
    for info in pkgutil.walk_packages(module.__path__, package + "."):
        importlib.import_module(info.name)
from click.testing import CliRunner
from ensemble.cli import cli
assert CliRunner().invoke(cli, ["--help"]).exit_code == 0
print("torch" in sys.modules)
"""


def test_core_packages_and_cli_help_do_not_load_torch() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


_HELP_PROBE = """
import sys
from ensemble.cli import main
sys.argv = ["ens", "--help"]
try:
    main()
except SystemExit:
    pass
print(sorted(m for m in ("numpy", "pandas", "torch", "scipy", "pyarrow") if m in sys.modules))
"""


def test_ens_help_imports_no_numeric_library() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _HELP_PROBE], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "Commands:" in result.stdout and "make-demo" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_the_light_demo_defaults_match_the_layout() -> None:
    from ensemble.competition.layout import FACE_971
    from ensemble.synthetic.demo_defaults import N_POINTS

    assert FACE_971.n_points == N_POINTS
