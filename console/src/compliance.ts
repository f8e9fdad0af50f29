// The compliance form's state and the document `PUT /account/compliance` takes: text fields
// in the form, typed values in the document.
import type { Compliance, ComplianceUpdate } from "./api/types";

export const DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"] as const;
export type Day = (typeof DAYS)[number];

export interface HoursRowForm {
  country: string;
  region: string;
  days: Day[];
  start: string;
  end: string;
  holidays: boolean;
}

export interface ComplianceForm {
  rows: HoursRowForm[];
  capOn: boolean;
  capMessages: string;
  capPeriodHours: string;
  requireConsent: boolean;
  optOutKeywords: string;
  optInKeywords: string;
  helpKeywords: string;
  optOutReply: string;
  optInReply: string;
  helpReply: string;
}

export function newRow(): HoursRowForm {
  return {
    country: "",
    region: "",
    days: ["mon", "tue", "wed", "thu", "fri"],
    start: "08:00",
    end: "20:00",
    holidays: true,
  };
}

/** Keywords typed one per line or separated by commas; blanks dropped, order kept. */
export function parseKeywords(text: string): string[] {
  return text
    .split(/[\n,]/)
    .map((word) => word.trim())
    .filter(Boolean);
}

export function formFromDocument(doc: Compliance): ComplianceForm {
  return {
    rows: doc.sendingHours.map((row) => ({
      country: row.country,
      region: row.region ?? "",
      days: DAYS.filter((d) => (row.days as string[]).includes(d)),
      start: row.start,
      end: row.end,
      holidays: row.holidays ?? true,
    })),
    capOn: doc.frequencyCap !== null,
    capMessages: String(doc.frequencyCap?.messages ?? 2),
    capPeriodHours: String(doc.frequencyCap?.periodHours ?? 24),
    requireConsent: doc.requireConsent,
    optOutKeywords: doc.optOutKeywords.join(", "),
    optInKeywords: doc.optInKeywords.join(", "),
    helpKeywords: doc.helpKeywords.join(", "),
    optOutReply: doc.optOutReply ?? "",
    optInReply: doc.optInReply ?? "",
    helpReply: doc.helpReply ?? "",
  };
}

/** The whole document: every field is sent, so what the form shows is what is stored. */
export function documentFromForm(form: ComplianceForm): ComplianceUpdate {
  return {
    sendingHours: form.rows.map((row) => ({
      country: row.country.trim().toUpperCase(),
      region: row.region.trim() ? row.region.trim().toUpperCase() : null,
      // In the week's order, whatever order the boxes were ticked in.
      days: DAYS.filter((d) => row.days.includes(d)),
      start: row.start,
      end: row.end,
      holidays: row.holidays,
    })),
    // A number field left blank is sent as is (NaN becomes null in JSON): the API names it.
    frequencyCap: form.capOn
      ? { messages: Number(form.capMessages), periodHours: Number(form.capPeriodHours) }
      : null,
    requireConsent: form.requireConsent,
    optOutKeywords: parseKeywords(form.optOutKeywords),
    optInKeywords: parseKeywords(form.optInKeywords),
    helpKeywords: parseKeywords(form.helpKeywords),
    optOutReply: form.optOutReply.trim() || null,
    optInReply: form.optInReply.trim() || null,
    helpReply: form.helpReply.trim() || null,
  };
}
