// One account with credits and two people, created through the public API as an operator
// would: the operator creates the account (its key is an owner key), which adds the users.
import type { FullConfig } from "@playwright/test";
import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { ADMIN_TOKEN, MANAGER, OWNER, VIEWER, type Seed } from "./seed";

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
  await post("/users", key, { ...OWNER, role: "owner" });
  await post("/users", key, { ...VIEWER, role: "viewer" });
  await post("/users", key, { ...MANAGER, role: "manager" });
  const seed: Seed = { accountId: Number(account.id), key };
  writeFileSync(resolve(import.meta.dirname, "../../.e2e/seed.json"), JSON.stringify(seed));
}
