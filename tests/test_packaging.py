"""Every Python package folder of the repository is listed in pyproject.toml."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_is_shipped() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    mapped = {name: ROOT / folder for name, folder in config.get("package-dir", {}).items()}
    found = set()
    for top in ("ensemble", "models", "analysis"):
        for init in (ROOT / top).rglob("__init__.py"):
            found.add(".".join(init.parent.relative_to(ROOT).parts))
    for name, folder in mapped.items():
        assert (folder / "__init__.py").is_file(), name
        found.add(name)
    assert found == listed
    assert (ROOT / "configs" / "demo.toml").is_file()


def test_every_data_file_of_a_package_is_shipped() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    patterns = config.get("package-data", {})
    for top in ("ensemble", "models", "analysis"):
        for data in (ROOT / top).rglob("*.json"):
            package = data.parent
            while not (package / "__init__.py").is_file():
                package = package.parent
            name = ".".join(package.relative_to(ROOT).parts)
            relative = data.relative_to(package)
            assert any(relative.match(glob) for glob in patterns.get(name, [])), data


def _names(requirements: list[str]) -> list[str]:
    """The distribution names of requirement strings ('torch>=2.1' -> 'torch')."""
    return [
        re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower() for requirement in requirements
    ]


def test_the_readme_commands_install_the_tested_versions() -> None:
    readme = (ROOT / "README.md").read_text().splitlines()
    for heading in ("# 1. install", "# 2. run the tests"):
        line = readme[next(i for i, text in enumerate(readme) if text.startswith(heading)) + 1]
        assert "pip install -q -c constraints.txt -e " in line, line
    assert "-c constraints.txt" in (ROOT / ".ci" / "run").read_text()


def test_dependencies_have_lower_bounds_and_tested_pins() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    required = [*project["dependencies"], *project["optional-dependencies"]["test"]]
    assert all(">=" in requirement and "==" not in requirement for requirement in required)
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.lower()] = version
    assert set(_names(required)) <= set(pins)
