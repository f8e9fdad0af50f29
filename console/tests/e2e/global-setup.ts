// One account with credits and three people. The operator creates the account through the
// API; its owner is created as the README tells a new user to (`clarion users create`, the
// password on standard input); the owner's key then adds the other two through the API.
import type { FullConfig } from "@playwright/test";
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { ADMIN_TOKEN, MANAGER, OWNER, SERVER_ENV, VIEWER, type Seed } from "./seed";

export default async function globalSetup(config: FullConfig) {
  const base = config.projects[0]!.use.baseURL!;
  const post = async (path: string, token: string, body: unknown) => {
    const response = await fetch(`${base}${path}`, {
      method: "POST",
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`);
    return (await response.json()) as Record<string, unknown>;
  };
  const account = await post("/admin/accounts", ADMIN_TOKEN, { name: "Acme", credits: 100 });
  const key = String(account.apiKey);
  execFileSync(
    resolve(import.meta.dirname, "../../../.venv/bin/clarion"),
    [
      "users",
      "create",
      "--account",
      String(account.id),
      OWNER.email,
      "--role",
      "owner",
      "--name",
      OWNER.name,
    ],
    {
      input: `${OWNER.password}\n`,
      env: { ...process.env, ...SERVER_ENV },
      stdio: ["pipe", "ignore", "inherit"],
    },
  );
  await post("/users", key, { ...VIEWER, role: "viewer" });
  await post("/users", key, { ...MANAGER, role: "manager" });
  const seed: Seed = { accountId: Number(account.id), key };
  writeFileSync(resolve(import.meta.dirname, "../../.e2e/seed.json"), JSON.stringify(seed));
}
