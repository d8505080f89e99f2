"""tests/e2e holds whole pipelines (the demo, FKD end to end, DDP): every test here is `slow`."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests of this folder `slow` (`pytest -m "not slow"` skips them)."""
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.slow)
