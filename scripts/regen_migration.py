"""Regenerate the initial migration from the models (the schema has not shipped yet).

Usage: .venv/bin/python scripts/regen_migration.py
"""

import subprocess
import sys
import tempfile
from pathlib import Path

from alembic import command

from clarion.db.migrate import MIGRATIONS, alembic_config

for old in (MIGRATIONS / "versions").glob("*.py"):
    old.unlink()

with tempfile.TemporaryDirectory() as tmp:
    config = alembic_config(f"sqlite:///{Path(tmp) / 'empty.db'}")
    config.set_main_option("file_template", "20261127_0600_%%(slug)s")
    command.revision(config, message="initial schema", autogenerate=True, rev_id="0001")
for path in (MIGRATIONS / "versions").glob("*.py"):
    # Alembic renders JSONB's default argument without its module prefix.
    path.write_text(path.read_text().replace("astext_type=Text()", "astext_type=sa.Text()"))
subprocess.run([sys.executable, "-m", "ruff", "format", "-q", str(MIGRATIONS / "versions")])
subprocess.run([sys.executable, "-m", "ruff", "check", "-q", "--fix", str(MIGRATIONS / "versions")])
print("regenerated", *sorted(p.name for p in (MIGRATIONS / "versions").glob("*.py")))
