"""Every CLI error is one sentence on stderr and a non-zero exit, never a traceback."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

CLARION = str(Path(sys.executable).with_name("clarion"))


def run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CLARION_")},
        "CLARION_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "COLUMNS": "80",
        **env,
    }
    return subprocess.run(
        [CLARION, *args], capture_output=True, text=True, env=environ, timeout=120
    )


@pytest.mark.parametrize(
    ("args", "env", "sentence"),
    [
        (["accounts", "create", "x", "--credits", "abc"], {},
         "invalid credits: credits must be a number"),
        (["accounts", "create", "x", "--credits", "-1"], {}, "invalid credits: "),
        (["accounts", "create", "", "--credits", "1"], {}, "invalid name: "),
        (["accounts", "create", "x"], {"CLARION_WORKER_BATCH_SIZE": "abc"},
         "invalid CLARION_WORKER_BATCH_SIZE: "),
        (["accounts", "create", "x"], {"CLARION_DATABASE_URL": "postgresql://u@127.0.0.1:1/x"},
         "cannot connect: "),
    ],
)  # fmt: skip
def test_one_sentence_and_a_non_zero_exit(
    tmp_path: Path, args: list[str], env: dict[str, str], sentence: str
) -> None:
    done = run(tmp_path, *args, **env)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("clarion: " + sentence), lines[0]
    assert "Traceback" not in done.stdout + done.stderr and done.stdout == ""


def test_a_good_command_still_works(tmp_path: Path) -> None:
    done = run(tmp_path, "accounts", "create", "x", "--credits", "12.5")
    assert done.returncode == 0, done.stderr
    assert "API key (shown once)" in done.stdout


def test_the_traceback_is_there_when_asked_for(tmp_path: Path) -> None:
    done = run(tmp_path, "accounts", "create", "x", "--credits", "abc", CLARION_TRACEBACK="1")
    assert done.returncode != 0 and "Traceback" in done.stderr
