// Formatting shared by every page: credits are exact decimals with at most 4 places.

const integer = new Intl.NumberFormat("en-US");

export function formatCount(value: number | null | undefined): string {
  return value == null ? "—" : integer.format(value);
}

/** Credits as the API carries them (a JSON number with at most 4 decimals), never rounded away. */
export function formatCredits(value: number | string | null | undefined): string {
  if (value == null || value === "") return "—";
  const text = typeof value === "number" ? value.toFixed(4) : value;
  const negative = text.startsWith("-");
  const [whole = "0", fraction = ""] = text.replace("-", "").split(".");
  const trimmed = fraction.replace(/0+$/, "").padEnd(2, "0");
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${negative ? "-" : ""}${grouped}.${trimmed}`;
}

export function formatPercent(ratio: number | null | undefined): string {
  if (ratio == null || Number.isNaN(ratio)) return "—";
  return `${(ratio * 100).toFixed(1)}%`;
}

export function formatDateTime(iso: string | null | undefined, timeZone?: string): string {
  if (!iso) return "—";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return new Intl.DateTimeFormat("en-GB", {
    dateStyle: "medium",
    timeStyle: "short",
    ...(timeZone ? { timeZone } : {}),
  }).format(date);
}

/** A date as `YYYY-MM-DD` in UTC, the form the statistics endpoint takes. */
export function isoDay(date: Date): string {
  return date.toISOString().slice(0, 10);
}

export function daysAgo(days: number, from: Date = new Date()): Date {
  return new Date(from.getTime() - days * 86_400_000);
}

/** Delivered share of what reached a final or accepted state, as the API defines it. */
export function deliveryRate(stats: {
  sent: number;
  delivered: number;
  read: number;
  failed: number;
}): number {
  const base = stats.sent + stats.delivered + stats.read + stats.failed;
  return base === 0 ? 0 : (stats.delivered + stats.read) / base;
}

/** How far a campaign has gone: messages no longer queued or sending, over recipients. */
export function progress(stats: { recipients: number; queued: number; sending: number }): number {
  if (stats.recipients === 0) return 0;
  return (stats.recipients - stats.queued - stats.sending) / stats.recipients;
}

/**
 * The RFC 3339 instant for a wall-clock date and time in an IANA time zone
 * (`2026-12-01`, `09:00`, `Europe/Paris` -> `2026-12-01T08:00:00Z`).
 */
export function zonedToUtc(day: string, time: string, timeZone: string): string {
  const [y, m, d] = day.split("-").map(Number);
  const [hh, mm] = time.split(":").map(Number);
  if ([y, m, d, hh, mm].some((n) => n === undefined || Number.isNaN(n))) {
    throw new Error("Choose a date and a time.");
  }
  const wall = Date.UTC(y!, m! - 1, d!, hh!, mm!);
  // The zone's offset at that instant, found by formatting a guess in the zone; twice, so a
  // time next to a daylight-saving change settles on the offset in force then.
  let guess = wall;
  for (let i = 0; i < 2; i++) guess = wall - zoneOffset(guess, timeZone);
  return new Date(guess).toISOString().replace(".000Z", "Z");
}

function zoneOffset(instant: number, timeZone: string): number {
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone,
    hourCycle: "h23",
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  }).formatToParts(new Date(instant));
  const get = (type: string) => Number(parts.find((p) => p.type === type)?.value);
  const asUtc = Date.UTC(
    get("year"),
    get("month") - 1,
    get("day"),
    get("hour"),
    get("minute"),
    get("second"),
  );
  return asUtc - Math.floor(instant / 1000) * 1000;
}

/**
 * One entry per day from `from` to `to` (inclusive, `YYYY-MM-DD`), taking the API's rows where
 * it has them and `empty(date)` for days it leaves out, so charts show quiet days as zero.
 */
export function everyDay<T extends { date: string }>(
  from: string,
  to: string,
  rows: readonly T[],
  empty: (date: string) => T,
): T[] {
  const byDate = new Map(rows.map((row) => [row.date, row]));
  const start = Date.parse(`${from}T00:00:00Z`);
  const end = Date.parse(`${to}T00:00:00Z`);
  if (Number.isNaN(start) || Number.isNaN(end) || end < start) return [...rows];
  const days: T[] = [];
  for (let t = start; t <= end && days.length < 3660; t += 86_400_000) {
    const date = isoDay(new Date(t));
    days.push(byDate.get(date) ?? empty(date));
  }
  return days;
}
