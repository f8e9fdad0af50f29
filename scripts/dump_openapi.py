"""Write the app's OpenAPI schema to a file (the console's API client is generated from it, so
the console's build fails when it and the API drift apart)."""

import json
import sys
from pathlib import Path

from clarion.app import create_app
from clarion.config import Settings


def main() -> None:
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("console/src/api/schema.json")
    # The schema does not depend on settings; these keep the dump from touching any database.
    schema = create_app(Settings(database_url="sqlite:///:memory:")).openapi()
    target.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(schema, indent=1, sort_keys=True) + "\n"
    if not target.exists() or target.read_text() != text:
        target.write_text(text)


if __name__ == "__main__":
    main()
