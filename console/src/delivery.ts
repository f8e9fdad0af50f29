// How a campaign's delivery rules read on its page: the send window, and the schedule of
// the estimate stored on the campaign (kept from the last `calculateGoal`).
import type { Campaign, Estimate } from "./api/types";

export type Schedule = NonNullable<Estimate["schedule"]>;
type Window = NonNullable<Campaign["sendWindow"]>;

const WEEK = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/** `mon–fri 09:00–18:00`; runs of consecutive days are joined, others listed. */
export function formatWindow(window: Window): string {
  const days = WEEK.filter((d) => (window.days as string[]).includes(d));
  const runs: string[][] = [];
  for (const day of days) {
    const run = runs[runs.length - 1];
    const previous = run?.[run.length - 1];
    if (run && previous && WEEK.indexOf(previous) === WEEK.indexOf(day) - 1) run.push(day);
    else runs.push([day]);
  }
  const named = runs
    .map((run) => (run.length > 2 ? `${run[0]}–${run[run.length - 1]}` : run.join(", ")))
    .join(", ");
  return `${days.length === 7 ? "every day" : named} ${window.start}–${window.end}`;
}

/** The stored estimate's schedule, when the estimate has one of the expected shape. */
export function scheduleOf(estimate: Campaign["estimate"]): Schedule | null {
  const schedule = (estimate as { schedule?: unknown } | null)?.schedule;
  if (typeof schedule !== "object" || schedule === null) return null;
  const s = schedule as Record<string, unknown>;
  return typeof s.sendableNow === "number" && typeof s.held === "number"
    ? (s as unknown as Schedule)
    : null;
}
