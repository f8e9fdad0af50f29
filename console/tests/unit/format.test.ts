import { describe, expect, it } from "vitest";
import { ApiError, readCookie } from "../../src/api/client";
import {
  daysAgo,
  everyDay,
  deliveryRate,
  formatCount,
  formatCredits,
  formatPercent,
  isoDay,
  progress,
  zonedToUtc,
} from "../../src/format";

describe("formatCredits", () => {
  it("keeps up to four decimals exactly and at least two", () => {
    expect(formatCredits(140)).toBe("140.00");
    expect(formatCredits(0.0701)).toBe("0.0701");
    expect(formatCredits(1234567.5)).toBe("1,234,567.50");
    expect(formatCredits(-3.25)).toBe("-3.25");
    expect(formatCredits(null)).toBe("—");
  });
});

describe("counts and rates", () => {
  it("groups thousands and writes percentages", () => {
    expect(formatCount(1000000)).toBe("1,000,000");
    expect(formatPercent(0.975)).toBe("97.5%");
    expect(formatPercent(null)).toBe("—");
  });

  it("computes the delivery rate as the contract defines it", () => {
    expect(deliveryRate({ sent: 40, delivered: 11700, read: 0, failed: 260 })).toBeCloseTo(0.975);
    expect(deliveryRate({ sent: 0, delivered: 0, read: 0, failed: 0 })).toBe(0);
  });

  it("measures progress as messages no longer queued or sending", () => {
    expect(progress({ recipients: 10, queued: 3, sending: 2 })).toBe(0.5);
    expect(progress({ recipients: 0, queued: 0, sending: 0 })).toBe(0);
  });
});

describe("dates", () => {
  it("writes UTC days and counts back", () => {
    const now = new Date("2026-12-01T10:00:00Z");
    expect(isoDay(now)).toBe("2026-12-01");
    expect(isoDay(daysAgo(29, now))).toBe("2026-11-02");
  });

  it("turns a wall-clock time in a zone into an RFC 3339 UTC instant", () => {
    expect(zonedToUtc("2026-12-01", "09:00", "Europe/Paris")).toBe("2026-12-01T08:00:00Z");
    expect(zonedToUtc("2026-07-01", "09:00", "Europe/Paris")).toBe("2026-07-01T07:00:00Z");
    expect(zonedToUtc("2026-12-01", "09:00", "America/New_York")).toBe("2026-12-01T14:00:00Z");
    expect(zonedToUtc("2026-12-01", "09:30", "UTC")).toBe("2026-12-01T09:30:00Z");
    expect(() => zonedToUtc("", "09:00", "UTC")).toThrow("Choose a date");
  });
});

describe("the API client helpers", () => {
  it("reads the CSRF cookie among others", () => {
    expect(readCookie("clarion_csrf", "a=1; clarion_csrf=abc%3D; b=2")).toBe("abc=");
    expect(readCookie("clarion_csrf", "a=1")).toBeNull();
  });

  it("turns a problem document into words and field messages", () => {
    const error = new ApiError(422, {
      title: "Invalid request",
      detail: "The request is not valid.",
      errors: [{ field: "message.text", message: "must not be empty" }],
    });
    expect(error.message).toBe("The request is not valid.");
    expect(error.forField("text")).toBe("must not be empty");
    expect(error.forField("listIds")).toBeUndefined();
  });
});

describe("everyDay", () => {
  it("fills the days the API left out, in order, inclusive", () => {
    const rows = [{ date: "2026-11-02", n: 5 }];
    const days = everyDay("2026-11-01", "2026-11-03", rows, (date) => ({ date, n: 0 }));
    expect(days).toEqual([
      { date: "2026-11-01", n: 0 },
      { date: "2026-11-02", n: 5 },
      { date: "2026-11-03", n: 0 },
    ]);
  });

  it("keeps the API's rows when the range cannot be read", () => {
    const rows = [{ date: "2026-11-02", n: 5 }];
    expect(everyDay("", "2026-11-03", rows, (date) => ({ date, n: 0 }))).toEqual(rows);
  });
});
