// Dump the API's OpenAPI schema from the Python app and generate the typed client's types
// from it. The console is type-checked against these types, so its build fails when the API
// and the console drift apart.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "../..");
const venvPython = resolve(repo, ".venv/bin/python");
const python = process.env.CLARION_PYTHON ?? (existsSync(venvPython) ? venvPython : "python3");
const schema = resolve(here, "../src/api/schema.json");
const types = resolve(here, "../src/api/schema.d.ts");

execFileSync(python, [resolve(repo, "scripts/dump_openapi.py"), schema], {
  stdio: "inherit",
  cwd: repo,
});
execFileSync(
  process.execPath,
  [resolve(here, "../node_modules/openapi-typescript/bin/cli.js"), schema, "-o", types],
  { stdio: "inherit" },
);
