import { readFileSync } from "node:fs";
import { resolve } from "node:path";

export const ADMIN_TOKEN = "e2e-admin-token";
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
