import { readFileSync } from "node:fs";
import { resolve } from "node:path";

export const ADMIN_TOKEN = "e2e-admin-token";
export const STATE = resolve(import.meta.dirname, "../../.e2e");
/** The settings of the `clarion serve` under test (and of the CLI run beside it). */
export const SERVER_ENV = {
  CLARION_DATABASE_URL: `sqlite:///${STATE}/e2e.db`,
  CLARION_ADMIN_TOKEN: ADMIN_TOKEN,
  CLARION_SIMULATOR_RECEIPT_DELAY: "0.3",
  CLARION_REDIS_URL: "",
  // Event hooks may post to a local receiver in the browser tests.
  CLARION_HOOKS_ALLOW_HTTP_HOSTS: "127.0.0.1",
};
export const OWNER = {
  email: "owner@example.com",
  password: "correct horse battery",
  name: "Olive Owner",
};
export const VIEWER = {
  email: "viewer@example.com",
  password: "viewer password 1",
  name: "Victor Viewer",
};

export const MANAGER = {
  email: "manager@example.com",
  password: "manager password 1",
  name: "Mia Manager",
};

export interface Seed {
  accountId: number;
  key: string;
}

export function seed(): Seed {
  return JSON.parse(
    readFileSync(resolve(import.meta.dirname, "../../.e2e/seed.json"), "utf8"),
  ) as Seed;
}
