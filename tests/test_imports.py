"""Modules that the commands and the benches import first load on their own, in a fresh
interpreter: an import cycle hidden by the order the application happens to import things
in fails here."""

import subprocess
import sys

import pytest

ENTRY_MODULES = [
    "clarion.cli",
    "clarion.app",
    "clarion.sending.engine",
    "clarion.sending.materialize",
    "clarion.audience.optouts",
    "clarion.audience.schemas",
    "clarion.delivery.service",
    "clarion.operations.retention",
]


@pytest.mark.parametrize("module", ENTRY_MODULES)
def test_module_imports_alone(module: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
