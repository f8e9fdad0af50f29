import { defineConfig } from "@playwright/test";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { SERVER_ENV, STATE as state } from "./tests/e2e/seed";

// Browser tests against a real `clarion serve` on a fresh SQLite file. Browsers are not
// downloaded: Playwright drives the system's Chromium (Debian's `chromium` package).
const PORT = Number(process.env.CLARION_E2E_PORT ?? 8765);
const repo = resolve(import.meta.dirname, "..");
const chromium =
  process.env.CLARION_CHROMIUM ??
  ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"].find(existsSync);

// Without a Chromium, the run is skipped, saying so (as the Python suite skips PostgreSQL's
// half), unless CLARION_TEST_REQUIRE_CHROMIUM is set: CI sets it, and there it is an error.
if (!chromium) {
  const why = "no Chromium found (install Debian's chromium, or set CLARION_CHROMIUM)";
  if (process.env.CLARION_TEST_REQUIRE_CHROMIUM) throw new Error(`Browser tests: ${why}`);
  console.log(`Browser tests SKIPPED: ${why}`);
  process.exit(0);
}

export default defineConfig({
  testDir: "tests/e2e",
  outputDir: "test-results",
  timeout: 60_000,
  expect: { timeout: 15_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  reporter: [["list"]],
  globalSetup: "./tests/e2e/global-setup.ts",
  use: {
    baseURL: `http://127.0.0.1:${PORT}`,
    launchOptions: { ...(chromium ? { executablePath: chromium } : {}), args: ["--no-sandbox"] },
    trace: "retain-on-failure",
    acceptDownloads: true,
    viewport: { width: 1280, height: 900 },
  },
  webServer: {
    command: `rm -rf "${state}" && mkdir -p "${state}" && exec "${repo}/.venv/bin/clarion" serve --port ${PORT}`,
    url: `http://127.0.0.1:${PORT}/healthz`,
    reuseExistingServer: false,
    timeout: 120_000,
    stdout: "ignore",
    stderr: "pipe",
    env: SERVER_ENV,
  },
});
