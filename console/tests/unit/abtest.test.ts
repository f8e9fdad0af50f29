import { describe, expect, it } from "vitest";
import {
  abBody,
  abDraftOf,
  checkAb,
  dearestVariant,
  metricRate,
  metricsFor,
  paramsOf,
  percentText,
  shareOf,
  type AbDraft,
} from "../../src/abtest";

function draft(patch: Partial<AbDraft> = {}): AbDraft {
  return {
    enabled: true,
    variants: [
      { name: "A", text: "Hi {{firstName}}, use {{code}}", templateId: null },
      { name: "B", text: "Sale today", templateId: null },
    ],
    testSharePercent: "20",
    metric: "delivered",
    decideAfterMinutes: "60",
    ...patch,
  };
}

describe("shareOf and percentText", () => {
  it("turn the percent typed into the API's fraction and back without float tails", () => {
    expect(shareOf("20")).toBe(0.2);
    expect(shareOf(" 14.3 ")).toBe(0.143);
    expect(shareOf("12.5")).toBe(0.125);
    expect(percentText(0.14)).toBe("14");
    expect(percentText(0.143)).toBe("14.3");
  });

  it("give NaN for what is not a plain number", () => {
    for (const text of ["", "abc", "1e2", "-5", "20%"]) expect(shareOf(text)).toBeNaN();
  });
});

describe("abBody", () => {
  it("builds variants with their own texts and only the params each one uses", () => {
    const body = abBody(draft(), "sms", { code: "BF20", other: "x" });
    expect(body).toEqual({
      variants: [
        {
          name: "A",
          message: { text: "Hi {{firstName}}, use {{code}}", templateParams: { code: "BF20" } },
        },
        { name: "B", message: { text: "Sale today", templateParams: null } },
      ],
      abTest: { testShare: 0.2, metric: "delivered", decideAfterMinutes: 60 },
    });
  });

  it("sends templates on WhatsApp, with the template's variables", () => {
    const bodies: Record<number, string> = { 7: "Code {{code}}", 8: "Hello" };
    const body = abBody(
      draft({
        variants: [
          { name: " A ", text: "", templateId: 7 },
          { name: "B", text: "", templateId: 8 },
        ],
      }),
      "whatsapp",
      { code: "X1" },
      (id) => (id === null ? "" : (bodies[id] ?? "")),
    );
    expect(body.variants).toEqual([
      { name: "A", message: { templateId: 7, templateParams: { code: "X1" } } },
      { name: "B", message: { templateId: 8, templateParams: {} } },
    ]);
  });
});

describe("checkAb", () => {
  it("accepts a sound test", () => {
    expect(checkAb(draft(), false)).toEqual([]);
    expect(checkAb(draft({ metric: "uniqueClicks" }), true)).toEqual([]);
  });

  it("names each problem with the API's field path", () => {
    const problems = checkAb(
      draft({
        variants: [
          { name: "Promo", text: "x", templateId: null },
          { name: "promo ", text: "y", templateId: null },
          { name: " ", text: "z", templateId: null },
        ],
        testSharePercent: "100",
        metric: "uniqueClicks",
        decideAfterMinutes: "1.5",
      }),
      false,
    );
    expect(problems.map((p) => p.field)).toEqual([
      "variants[1].name",
      "variants[2].name",
      "abTest.testShare",
      "abTest.decideAfterMinutes",
      "abTest.metric",
    ]);
  });

  it("counts the variants and bounds the delay to a week", () => {
    const one = draft({ variants: [{ name: "A", text: "x", templateId: null }] });
    expect(checkAb(one, false).map((p) => p.field)).toEqual(["variants"]);
    expect(checkAb(draft({ decideAfterMinutes: "10080" }), false)).toEqual([]);
    expect(checkAb(draft({ decideAfterMinutes: "10081" }), false)[0]?.field).toBe(
      "abTest.decideAfterMinutes",
    );
    expect(checkAb(draft({ testSharePercent: "0" }), false)[0]?.field).toBe("abTest.testShare");
  });
});

describe("metricsFor", () => {
  it("offers unique clicks only with tracked links", () => {
    expect(metricsFor(false)).toEqual(["delivered"]);
    expect(metricsFor(true)).toEqual(["delivered", "uniqueClicks"]);
  });
});

describe("abDraftOf and paramsOf", () => {
  it("read a saved A/B campaign back into the form", () => {
    const campaign = {
      message: null,
      variants: [
        { name: "A", message: { text: "One {{code}}", templateParams: { code: "Z" } } },
        { name: "B", message: { templateId: 4 } },
      ],
      abTest: { testShare: 0.35, metric: "uniqueClicks", decideAfterMinutes: 90 },
    };
    expect(abDraftOf(campaign)).toEqual({
      enabled: true,
      variants: [
        { name: "A", text: "One {{code}}", templateId: null },
        { name: "B", text: "", templateId: 4 },
      ],
      testSharePercent: "35",
      metric: "uniqueClicks",
      decideAfterMinutes: "90",
    });
    expect(paramsOf(campaign)).toEqual({ code: "Z" });
  });

  it("start a plain campaign's test from its text, switched off", () => {
    const form = abDraftOf({ variants: null, abTest: null }, "Hello");
    expect(form.enabled).toBe(false);
    expect(form.variants.map((v) => [v.name, v.text])).toEqual([
      ["A", "Hello"],
      ["B", ""],
    ]);
    expect(paramsOf({ message: { text: "x", templateParams: { a: "1" } } })).toEqual({ a: "1" });
    expect(paramsOf(null)).toEqual({});
  });
});

describe("metricRate and dearestVariant", () => {
  it("rate each metric over the variant's messages", () => {
    const stats = { recipients: 4, delivered: 2, read: 1, uniqueClicks: 1 };
    expect(metricRate("delivered", stats)).toBe(0.75);
    expect(metricRate("uniqueClicks", stats)).toBe(0.25);
    const none = { recipients: 0, delivered: 0, read: 0, uniqueClicks: 0 };
    expect(metricRate("delivered", none)).toBeNull();
    expect(metricRate("uniqueClicks", null)).toBeNull();
  });

  it("pick the variant the remainder is reserved at (the first of equals)", () => {
    const v = [
      { name: "A", audiencePrice: 1 },
      { name: "B", audiencePrice: 3 },
      { name: "C", audiencePrice: 3 },
    ];
    expect(dearestVariant(v)?.name).toBe("B");
    expect(dearestVariant([])).toBeNull();
  });
});
