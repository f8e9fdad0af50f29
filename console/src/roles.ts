import { ROLES, type Role } from "./api/types";

/** Whether `role` includes `needed` (each role includes the ones before it). */
export function roleAtLeast(role: string | null | undefined, needed: Role): boolean {
  const have = ROLES.indexOf((role ?? "") as Role);
  return have >= 0 && have >= ROLES.indexOf(needed);
}
