import { describe, expect, it } from "vitest";
import { roleAtLeast } from "../../src/roles";

describe("roleAtLeast", () => {
  it("orders viewer < editor < manager < owner", () => {
    expect(roleAtLeast("owner", "manager")).toBe(true);
    expect(roleAtLeast("manager", "manager")).toBe(true);
    expect(roleAtLeast("editor", "manager")).toBe(false);
    expect(roleAtLeast("viewer", "editor")).toBe(false);
    expect(roleAtLeast("viewer", "viewer")).toBe(true);
  });

  it("grants nothing to an unknown or missing role", () => {
    expect(roleAtLeast("admin", "viewer")).toBe(false);
    expect(roleAtLeast(null, "viewer")).toBe(false);
  });
});
