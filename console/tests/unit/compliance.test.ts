import { describe, expect, it } from "vitest";
import { ApiError } from "../../src/api/client";
import { errorsUnder } from "../../src/components/ui";
import type { Compliance } from "../../src/api/types";
import { documentFromForm, formFromDocument, newRow, parseKeywords } from "../../src/compliance";

const STORED: Compliance = {
  sendingHours: [
    {
      country: "US",
      region: "US-FL",
      days: ["sat", "mon"],
      start: "08:00",
      end: "20:00",
      holidays: false,
    },
  ],
  frequencyCap: { messages: 2, periodHours: 24 },
  requireConsent: true,
  optOutKeywords: ["STOP", "QUIT"],
  optInKeywords: ["START"],
  helpKeywords: [],
  optOutReply: "Bye.",
  optInReply: null,
  helpReply: null,
};

describe("compliance form", () => {
  it("round-trips the stored document", () => {
    const doc = documentFromForm(formFromDocument(STORED));
    expect(doc).toEqual({
      ...STORED,
      sendingHours: [{ ...STORED.sendingHours[0], days: ["mon", "sat"] }],
    });
  });

  it("builds typed values from what was typed", () => {
    const form = formFromDocument(STORED);
    form.rows.push({ ...newRow(), country: " fr ", region: " ", days: ["sun", "mon"] });
    form.capOn = false;
    form.optOutKeywords = "stop,\n arret ,, END";
    form.optOutReply = "   ";
    form.helpReply = "Call us.";
    const doc = documentFromForm(form);
    expect(doc.sendingHours?.[1]).toEqual({
      country: "FR",
      region: null,
      days: ["mon", "sun"],
      start: "08:00",
      end: "20:00",
      holidays: true,
    });
    expect(doc.frequencyCap).toBeNull();
    expect(doc.optOutKeywords).toEqual(["stop", "arret", "END"]);
    expect(doc.optOutReply).toBeNull();
    expect(doc.helpReply).toBe("Call us.");
  });

  it("sends the cap as numbers", () => {
    const form = formFromDocument({ ...STORED, frequencyCap: null });
    expect(form.capOn).toBe(false);
    form.capOn = true;
    form.capMessages = "3";
    form.capPeriodHours = "48";
    expect(documentFromForm(form).frequencyCap).toEqual({ messages: 3, periodHours: 48 });
  });

  it("splits keywords on commas and lines", () => {
    expect(parseKeywords(" a, b\nc ,\n\n")).toEqual(["a", "b", "c"]);
  });

  it("gathers the API's errors under a field", () => {
    const error = new ApiError(422, {
      detail: "invalid",
      errors: [
        { field: "optOutKeywords[1]", message: "'!' has no letters or digits" },
        { field: "sendingHours[0].end", message: "must be after start" },
        { field: "optOutKeywordsX", message: "other" },
      ],
    });
    expect(errorsUnder(error, "optOutKeywords")).toBe("[1]: '!' has no letters or digits");
    expect(errorsUnder(error, "sendingHours[0].end")).toBe("must be after start");
    expect(errorsUnder(error, "helpKeywords")).toBeUndefined();
    expect(errorsUnder(new Error("x"), "optOutKeywords")).toBeUndefined();
  });
});
