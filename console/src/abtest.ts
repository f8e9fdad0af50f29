// A/B tests in the console: the composer's form state and the body it sends, the checks
// worth making before a round trip, and the figures the campaign page shows per variant.
// The server stays the judge: what it refuses comes back as a 422 on the same field paths.
import type { AbTestBody, AbTestMetric, VariantBody } from "./api/types";
import { variablesOf } from "./message";

export const MIN_VARIANTS = 2;
export const MAX_VARIANTS = 5;
export const MAX_DECIDE_MINUTES = 7 * 24 * 60;

/** One variant as the composer edits it: text for SMS and RCS, a template for WhatsApp. */
export interface VariantDraft {
  name: string;
  text: string;
  templateId: number | null;
}

/** The composer's A/B section; numbers stay the text typed until the body is built. */
export interface AbDraft {
  enabled: boolean;
  variants: VariantDraft[];
  /** Percent of the audience in the test, as typed ("20" for 20 %). */
  testSharePercent: string;
  metric: AbTestMetric;
  decideAfterMinutes: string;
}

export interface FieldProblem {
  field: string;
  message: string;
}

const LETTERS = "ABCDE";

export function blankVariant(index: number): VariantDraft {
  return { name: LETTERS[index] ?? `V${index + 1}`, text: "", templateId: null };
}

interface StoredVariant {
  name: string;
  message: Record<string, unknown>;
}

interface StoredAbTest {
  testShare: number;
  metric: string;
  decideAfterMinutes: number;
}

/**
 * The draft a campaign starts the composer with: its variants and test when it has them,
 * else the A/B section off, with the campaign's own text as variant A's starting point.
 */
export function abDraftOf(
  campaign: { variants?: StoredVariant[] | null; abTest?: StoredAbTest | null } | null,
  text = "",
): AbDraft {
  const ab = campaign?.abTest;
  const stored = campaign?.variants ?? [];
  if (ab && stored.length >= MIN_VARIANTS) {
    return {
      enabled: true,
      variants: stored.map((v) => ({
        name: v.name,
        text: typeof v.message.text === "string" ? v.message.text : "",
        templateId: typeof v.message.templateId === "number" ? v.message.templateId : null,
      })),
      testSharePercent: percentText(ab.testShare),
      metric: ab.metric === "uniqueClicks" ? "uniqueClicks" : "delivered",
      decideAfterMinutes: String(ab.decideAfterMinutes),
    };
  }
  return {
    enabled: false,
    variants: [{ ...blankVariant(0), text }, blankVariant(1)],
    testSharePercent: "20",
    metric: "delivered",
    decideAfterMinutes: "60",
  };
}

/**
 * The values of the other variables a campaign was saved with: its message's, or those its
 * variants carry (the composer edits them as one set).
 */
export function paramsOf(
  campaign: {
    message?: Record<string, unknown> | null;
    variants?: StoredVariant[] | null;
  } | null,
): Record<string, string> {
  const messages = campaign?.variants?.length
    ? campaign.variants.map((v) => v.message)
    : [campaign?.message ?? {}];
  const out: Record<string, string> = {};
  for (const message of messages) {
    const params = message.templateParams;
    if (params && typeof params === "object") {
      for (const [key, value] of Object.entries(params)) {
        if (typeof value === "string") out[key] = value;
      }
    }
  }
  return out;
}

/** 0.2 -> "20"; 0.125 -> "12.5" (no binary-float tails such as 14.000000000000002). */
export function percentText(share: number): string {
  return String(Number((share * 100).toFixed(4)));
}

/**
 * The test share as the API takes it (0 < x < 1), from the percent typed; NaN when the text
 * is not a number. Rounded to 12 significant digits so that "14.3" gives 0.143, not
 * 0.14300000000000002.
 */
export function shareOf(percent: string): number {
  const trimmed = percent.trim();
  if (!/^\d+(\.\d+)?$/.test(trimmed)) return Number.NaN;
  return Number((Number(trimmed) / 100).toPrecision(12));
}

/** The metrics a campaign may use: unique clicks only count when its links are tracked. */
export function metricsFor(trackLinks: boolean): AbTestMetric[] {
  return trackLinks ? ["delivered", "uniqueClicks"] : ["delivered"];
}

/** The `variants` and `abTest` of a create or update body. */
export function abBody(
  draft: AbDraft,
  channel: string,
  params: Record<string, string>,
  templateBody: (templateId: number | null) => string = () => "",
): { variants: VariantBody[]; abTest: AbTestBody } {
  const variants = draft.variants.map((v) => {
    const body = channel === "whatsapp" ? templateBody(v.templateId) : v.text;
    const own = paramsFor(body, params);
    return {
      name: v.name.trim(),
      message:
        channel === "whatsapp"
          ? { templateId: v.templateId, templateParams: own ?? {} }
          : { text: v.text, templateParams: own },
    };
  });
  return {
    variants,
    abTest: {
      testShare: shareOf(draft.testSharePercent),
      metric: draft.metric,
      decideAfterMinutes: Number(draft.decideAfterMinutes.trim() || Number.NaN),
    },
  };
}

/** The values of the non-contact variables this text uses (null when it uses none). */
function paramsFor(text: string, params: Record<string, string>): Record<string, string> | null {
  const own = Object.fromEntries(
    variablesOf(text)
      .filter((name) => params[name] !== undefined)
      .map((name) => [name, params[name]!]),
  );
  return Object.keys(own).length ? own : null;
}

/**
 * What the form can tell before asking the server, named with the API's field paths so
 * that the same place shows it: duplicate or empty names, a share or delay out of range,
 * a metric the campaign cannot measure. Empty: send it.
 */
export function checkAb(draft: AbDraft, trackLinks: boolean): FieldProblem[] {
  const problems: FieldProblem[] = [];
  if (draft.variants.length < MIN_VARIANTS || draft.variants.length > MAX_VARIANTS) {
    problems.push({
      field: "variants",
      message: `An A/B test has ${MIN_VARIANTS} to ${MAX_VARIANTS} variants.`,
    });
  }
  const seen = new Set<string>();
  draft.variants.forEach((v, i) => {
    const name = v.name.trim();
    const key = name.toLocaleLowerCase();
    if (!name) problems.push({ field: `variants[${i}].name`, message: "Give the variant a name." });
    else if (name.length > 32)
      problems.push({ field: `variants[${i}].name`, message: "At most 32 characters." });
    else if (seen.has(key))
      problems.push({ field: `variants[${i}].name`, message: `The name ${name} is used twice.` });
    seen.add(key);
  });
  const share = shareOf(draft.testSharePercent);
  if (!(share > 0 && share < 1)) {
    problems.push({
      field: "abTest.testShare",
      message: "The test share is a percentage above 0 and below 100.",
    });
  }
  const minutes = Number(draft.decideAfterMinutes.trim() || Number.NaN);
  if (!Number.isInteger(minutes) || minutes < 1 || minutes > MAX_DECIDE_MINUTES) {
    problems.push({
      field: "abTest.decideAfterMinutes",
      message: `Whole minutes from 1 to ${MAX_DECIDE_MINUTES} (a week).`,
    });
  }
  if (!metricsFor(trackLinks).includes(draft.metric)) {
    problems.push({
      field: "abTest.metric",
      message: "Unique clicks are counted on tracked links: turn on link tracking.",
    });
  }
  return problems;
}

export interface VariantCounters {
  recipients: number;
  delivered: number;
  read: number;
  uniqueClicks: number;
}

/**
 * A variant's rate of a metric as the decision counts it, over its messages: delivered
 * or read, or recipients who clicked; null before it has any. Once the remainder goes out
 * with the winner, the winner's figures cover those messages too.
 */
export function metricRate(
  metric: AbTestMetric,
  stats: VariantCounters | null | undefined,
): number | null {
  if (!stats || stats.recipients === 0) return null;
  const hits = metric === "uniqueClicks" ? stats.uniqueClicks : stats.delivered + stats.read;
  return hits / stats.recipients;
}

/** The estimate's dearest variant (the one the remainder is reserved at), by audience price. */
export function dearestVariant<T extends { name: string; audiencePrice: number }>(
  variants: readonly T[],
): T | null {
  let dearest: T | null = null;
  for (const v of variants) if (!dearest || v.audiencePrice > dearest.audiencePrice) dearest = v;
  return dearest;
}
