"""Schemathesis over the served OpenAPI document, with every check, against a real
`clarion serve` on each backend: the schema and the server agree (problem documents,
status codes, content types, what is accepted and what is refused).

CI-sized: the examples and fuzzing phases, 10 examples an operation, a fixed seed. The full
run (coverage phase included, any seed) is the command in `schemathesis.toml`.
"""

import re
import subprocess
import sys
from pathlib import Path

import httpx

from tests.app.server import ADMIN_TOKEN, serving

ROOT = Path(__file__).resolve().parents[2]
SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))


def test_schemathesis_finds_no_failure(database_url: str, tmp_path: Path) -> None:
    with serving(database_url, tmp_path, CLARION_IMPORT_WORKERS="0") as served:
        r = httpx.post(
            f"{served.base}/admin/accounts",
            json={"name": "schemathesis", "credits": 1000},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
        key = r.json()["apiKey"]
        done = subprocess.run(
            [
                SCHEMATHESIS,
                "run",
                f"{served.base}/openapi.json",
                "--checks",
                "all",
                "--header",
                f"Authorization: Bearer {key}",
                "--phases",
                "examples,fuzzing",
                "--max-examples",
                "10",
                "--seed",
                "1",
                "--workers",
                "2",
                "--no-color",
            ],
            cwd=ROOT,  # schemathesis.toml
            capture_output=True,
            text=True,
            timeout=600,
        )
    report = done.stdout + done.stderr
    assert done.returncode == 0, report[-6000:]
    cases = re.search(r"(\d+) generated, (\d+) passed", report)
    assert cases is not None and cases.group(1) == cases.group(2), report[-3000:]
    assert int(cases.group(1)) >= 300, report[-3000:]  # it did test something
