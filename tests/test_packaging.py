"""Every Python package folder of the repository is listed in pyproject.toml."""

from __future__ import annotations

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

