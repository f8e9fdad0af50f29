import { describe, expect, it } from "vitest";
import { formatWindow, scheduleOf } from "../../src/delivery";

describe("formatWindow", () => {
  it("joins runs of days and keeps the week's order", () => {
    expect(
      formatWindow({ days: ["fri", "mon", "tue", "wed", "thu"], start: "09:00", end: "18:00" }),
    ).toBe("mon–fri 09:00–18:00");
    expect(formatWindow({ days: ["sat", "mon", "tue"], start: "08:00", end: "12:00" })).toBe(
      "mon, tue, sat 08:00–12:00",
    );
  });

  it("says every day for the whole week", () => {
    const days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"] as const;
    expect(formatWindow({ days: [...days], start: "00:00", end: "24:00" })).toBe(
      "every day 00:00–24:00",
    );
  });
});

describe("scheduleOf", () => {
  it("reads the stored estimate's schedule", () => {
    const schedule = { sendableNow: 2, held: 1, firstSendAt: null, lastWindowOpensAt: null };
    expect(scheduleOf({ total: 3, schedule })).toEqual(schedule);
  });

  it("is null without one", () => {
    expect(scheduleOf(null)).toBeNull();
    expect(scheduleOf({ total: 3 })).toBeNull();
    expect(scheduleOf({ schedule: null })).toBeNull();
    expect(scheduleOf({ schedule: { held: "x" } })).toBeNull();
  });
});
