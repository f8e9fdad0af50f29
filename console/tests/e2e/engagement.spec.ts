// Compliance settings, a campaign's clicks and delivery rules, a contact's history and the
// event hooks, each through the console; fixtures are made with the owner's API key.
import AxeBuilder from "@axe-core/playwright";
import { expect, test, type APIRequestContext, type Locator, type Page } from "@playwright/test";
import { execFileSync } from "node:child_process";
import { resolve } from "node:path";
import { MANAGER, STATE, VIEWER, seed } from "./seed";

const SHOTS = resolve(import.meta.dirname, "../../test-results/screenshots");

async function check(page: Page, name: string) {
  await expect(page.getByText(/^Loading /)).toHaveCount(0);
  const results = await new AxeBuilder({ page }).analyze();
  const bad = results.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  expect(
    bad.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`),
    `accessibility of ${name}`,
  ).toEqual([]);
  await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
}

async function signIn(page: Page, who: { email: string; password: string }) {
  await page.goto("/sign-in");
  await page.getByLabel("Email").fill(who.email);
  await page.getByLabel("Password").fill(who.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("link", { name: "Sign out" })).toBeVisible();
}

/** The owner's API, for what the scenario needs but does not test. */
async function api(request: APIRequestContext, method: string, path: string, data?: unknown) {
  const response = await request.fetch(path, {
    method,
    headers: { Authorization: `Bearer ${seed().key}` },
    ...(data === undefined ? {} : { data }),
  });
  expect(response.ok(), `${method} ${path}: ${await response.text()}`).toBe(true);
  return response.status() === 204 ? null : ((await response.json()) as Record<string, unknown>);
}

/** One statement on the server's SQLite file, for states no request can reach in a test. */
function sql(statement: string): string {
  const program =
    "import sqlite3, sys\n" +
    "db = sqlite3.connect(sys.argv[1], timeout=30)\n" +
    "rows = db.execute(sys.argv[2]).fetchall()\n" +
    "db.commit()\n" +
    "print(rows[0][0] if rows else '')";
  return execFileSync("python3", ["-c", program, `${STATE}/e2e.db`, statement], {
    encoding: "utf8",
  }).trim();
}

test.describe.configure({ mode: "serial" });

test("a manager sets sending hours, a cap and keywords; bad fields are named", async ({
  page,
  request,
}) => {
  await signIn(page, MANAGER);
  await page.getByRole("link", { name: "Settings" }).click();
  const section = page.getByRole("region", { name: "Compliance" });
  await expect(section.getByText("No rows: sending at any time.")).toBeVisible();
  await section.getByRole("button", { name: "Add sending hours row" }).click();
  await section.getByLabel("Country (row 1)").fill("fr");
  await section.getByLabel("End (row 1)").fill("07:00");
  await section.getByRole("group", { name: "Days (row 1)" }).getByLabel("sat").check();
  await section.getByLabel("Send on public holidays (row 1)").uncheck();
  await section.getByLabel("Cap marketing messages per contact").check();
  await section.getByLabel("Messages at most").fill("3");
  await section.getByLabel("Opt-out keywords").fill("STOP, arrêt");
  await section.getByRole("button", { name: "Save compliance" }).click();
  // The API's message lands under the field it names.
  const end = section.getByLabel("End (row 1)");
  await expect(end).toHaveAttribute("aria-invalid", "true");
  await expect(end).toHaveAccessibleDescription(/must be after start/);

  await end.fill("20:00");
  await section.getByRole("button", { name: "Save compliance" }).click();
  await expect(section.getByRole("status")).toHaveText("Saved.");
  const stored = await api(request, "GET", "/account/compliance");
  expect(stored!.sendingHours).toEqual([
    {
      country: "FR",
      region: null,
      days: ["mon", "tue", "wed", "thu", "fri", "sat"],
      start: "08:00",
      end: "20:00",
      holidays: false,
    },
  ]);
  expect(stored!.frequencyCap).toEqual({ messages: 3, periodHours: 24 });
  expect(stored!.optOutKeywords).toEqual(["STOP", "ARRET"]);
  await check(page, "settings-compliance");

  await page.reload();
  await expect(section.getByLabel("Country (row 1)")).toHaveValue("FR");
  await expect(section.getByLabel("Opt-out keywords")).toHaveValue("STOP, ARRET");
  await section.getByRole("button", { name: "Remove row 1" }).click();
  await section.getByLabel("Cap marketing messages per contact").uncheck();
  await section.getByRole("button", { name: "Save compliance" }).click();
  await expect(section.getByRole("status")).toHaveText("Saved.");
  const cleared = await api(request, "GET", "/account/compliance");
  expect(cleared!.sendingHours).toEqual([]);
  expect(cleared!.frequencyCap).toBeNull();

  // A viewer reads them but is offered no control that changes them.
  await page.getByRole("link", { name: "Sign out" }).click();
  await expect(page.getByRole("button", { name: "Sign in" })).toBeVisible();
  await signIn(page, VIEWER);
  await page.getByRole("link", { name: "Settings" }).click();
  await expect(section.getByLabel("Opt-out keywords")).toBeDisabled();
  await expect(section.getByRole("button", { name: "Save compliance" })).toHaveCount(0);
  await expect(page.getByRole("link", { name: "Hooks" })).toHaveCount(0);
});

test("a campaign with tracked links shows its clicks, links and delivery rules", async ({
  page,
  request,
}) => {
  test.setTimeout(120_000);
  // The specs share one account: another one may have turned approval on.
  await api(request, "PUT", "/account/settings", { approvalRequired: false });
  const list = await api(request, "POST", "/lists", { name: "Clickers" });
  await api(request, "POST", `/lists/${String(list!.id)}/contacts`, {
    contacts: [{ phone: "+33611110001" }, { phone: "+33611110002" }],
  });
  const week = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
  const campaign = await api(request, "POST", "/campaigns", {
    name: "Winter sale",
    channel: "sms",
    message: { text: "Sale today: https://shop.example.com/sale" },
    listIds: [list!.id],
    trackLinks: true,
    sendWindow: { days: week, start: "00:00", end: "24:00" },
    expiresAt: new Date(Date.now() + 2 * 86_400_000).toISOString(),
  });
  const id = String(campaign!.id);
  await api(request, "POST", `/campaigns/${id}/calculateGoal`);
  await api(request, "PUT", `/campaigns/${id}/confirm`, {});
  await expect
    .poll(async () => (await api(request, "GET", `/campaigns/${id}`))!.status, {
      timeout: 60_000,
    })
    .toBe("completed");
  // A recipient opens their short link twice.
  const code = sql(`SELECT code FROM link WHERE campaign_id = ${id} ORDER BY code LIMIT 1`);
  for (let i = 0; i < 2; i++) {
    const visit = await request.get(`/l/${code}`, { maxRedirects: 0 });
    expect(visit.status()).toBe(302);
  }

  await signIn(page, MANAGER);
  await page.goto(`/campaigns/${id}`);
  await expect(page.getByText("completed", { exact: true })).toBeVisible();
  const counters = page.getByTestId("counters");
  await expect(counters.getByText("Clicks", { exact: true })).toBeVisible();
  await expect(counters.locator(".stat", { hasText: /^Clicks/ }).locator("dd")).toHaveText("2");
  await expect(counters.locator(".stat", { hasText: "Unique clicks" }).locator("dd")).toHaveText(
    "1",
  );
  const links = page.getByRole("table", { name: "Links" });
  await expect(links.getByRole("row", { name: /shop\.example\.com\/sale/ })).toContainText("2");
  const rules = page.getByTestId("delivery-rules");
  await expect(rules).toContainText("marketing");
  await expect(rules).toContainText("every day 00:00–24:00");
  const schedule = page.getByTestId("schedule");
  await expect(schedule.locator(".stat", { hasText: "Sendable now" }).locator("dd")).toHaveText(
    "2",
  );
  await expect(schedule.locator(".stat", { hasText: "Held" }).locator("dd")).toHaveText("0");
  await check(page, "campaign-links");
});

test("a contact's consent and history show who changed what", async ({ page, request }) => {
  const contact = await api(request, "POST", "/contacts", {
    phone: "+33622220001",
    firstName: "Hana",
    consent: { sms: { status: "granted", proof: "web form" } },
  });
  await signIn(page, MANAGER);
  await page.goto(`/contacts/${String(contact!.id)}`);
  const consent = page.getByRole("table", { name: "Consent" });
  await expect(consent.getByRole("row", { name: /sms/ })).toContainText("granted");
  await expect(consent.getByRole("row", { name: /sms/ })).toContainText("web form");
  await expect(consent.getByRole("row", { name: /whatsapp/ })).toContainText("not asked");
  const history = page.getByRole("table", { name: "History" });
  await expect(history.getByRole("row", { name: /consent granted/ })).toContainText("api");

  await page.getByRole("group", { name: "Opted out of" }).getByLabel("sms").check();
  await page.getByRole("button", { name: "Save contact" }).click();
  await expect(page.getByText("Saved.")).toBeVisible();
  const optOut = history.getByRole("row", { name: /opted out/ });
  await expect(optOut).toContainText("console");
  await expect(optOut).toContainText(MANAGER.email);
  await expect(page.getByRole("navigation", { name: "History pages" })).toContainText("1–2 of 2");
  await check(page, "contact-history");
});

test("a manager creates a hook, sees its secret once, its deliveries, and retries one", async ({
  page,
  request,
}) => {
  test.setTimeout(90_000);
  await signIn(page, MANAGER);
  await page.getByRole("link", { name: "Hooks" }).click();
  await expect(page.getByRole("heading", { name: "Hooks", level: 1 })).toBeVisible();
  // Nothing listens on port 9: every attempt fails.
  await page.getByLabel("Hook URL").fill("http://127.0.0.1:9/clarion");
  await page.getByRole("button", { name: "Create hook" }).click();
  await expect(page.getByRole("group", { name: "Events" }).getByRole("alert")).toBeVisible();
  await page.getByRole("group", { name: "Events" }).getByLabel("contact.opted_out").check();
  await page.getByLabel("Hook description").fill("CRM sync");
  await page.getByRole("button", { name: "Create hook" }).click();
  await expect(page.getByRole("status")).toContainText("whsec_");
  const hooks = (await api(request, "GET", "/hooks"))!.items as { id: number }[];
  const hookId = hooks[0]!.id;
  const row = page.getByRole("row", { name: /127\.0\.0\.1:9\/clarion/ });
  await expect(row).toContainText("contact.opted_out");
  await expect(row).toContainText("enabled");
  await check(page, "hooks");

  await row.getByRole("button", { name: `Disable hook ${hookId}` }).click();
  await expect(row).toContainText("disabled");
  await row.getByRole("button", { name: `Enable hook ${hookId}` }).click();
  await expect(row).toContainText("enabled");

  // An opt-out is an event for the hook; its delivery fails and waits for a retry.
  const contact = await api(request, "POST", "/contacts", { phone: "+33633330001" });
  await api(request, "PUT", `/contacts/${String(contact!.id)}`, { optOuts: ["sms"] });
  await expect
    .poll(
      async () => {
        const page = await api(request, "GET", `/hooks/${hookId}/deliveries`);
        return (page!.items as { attempts: number }[])[0]?.attempts ?? 0;
      },
      { timeout: 30_000 },
    )
    .toBeGreaterThan(0);
  // The 24 hours of retries are not waited for: the delivery is marked failed as they end.
  sql(`UPDATE hook_delivery SET status = 'failed' WHERE hook_id = ${hookId}`);
  await row.getByRole("button", { name: `Deliveries of hook ${hookId}` }).click();
  const log = page.getByRole("table", { name: `Deliveries of hook ${hookId}` });
  await expect(log.locator(".badge")).toHaveText("failed");
  await log.getByRole("button", { name: /^Retry delivery / }).click();
  // Pending again (the receiver's error stays as the last answer), with nothing to retry.
  await expect(log.locator(".badge")).toHaveText("pending");
  await expect(log.getByRole("button", { name: /^Retry delivery / })).toHaveCount(0);
  await check(page, "hook-deliveries");

  await row.getByRole("button", { name: `Delete hook ${hookId}` }).click();
  await expect(page.getByText("No hooks yet.")).toBeVisible();
});

test("an A/B campaign is composed, confirmed, decided early and shows its winner", async ({
  page,
  request,
  browser,
}) => {
  test.setTimeout(150_000);
  await api(request, "PUT", "/account/settings", { approvalRequired: false });
  const list = await api(request, "POST", "/lists", { name: "AB testers" });
  await api(request, "POST", `/lists/${String(list!.id)}/contacts`, {
    contacts: Array.from({ length: 10 }, (_, i) => ({ phone: `+3364444000${i}` })),
  });

  await signIn(page, MANAGER);
  await page.goto("/campaigns/new");
  await page.getByLabel("Name", { exact: true }).fill("Spring A/B");
  await page
    .getByRole("group", { name: "Lists", exact: true })
    .getByLabel(/AB testers/)
    .check();
  await page.getByLabel("Message text").fill("Spring sale: 20% off");
  await page.getByLabel("Run an A/B test").check();
  // Variant 1 starts from the message written so far.
  await expect(page.getByLabel("Text of variant 1")).toHaveValue("Spring sale: 20% off");
  await page.getByLabel("Text of variant 2").fill("Spring sale for {{nickname}}");
  await page.getByLabel("Test share (%)").fill("50");
  // Unique clicks are only offered with tracked links.
  const metric = page.getByLabel("Winning metric");
  await expect(metric.getByRole("option")).toHaveCount(1);
  await page.getByLabel(/^Track links/).check();
  await expect(metric.getByRole("option")).toHaveCount(2);
  await page.getByLabel(/^Track links/).uncheck();

  // The server's refusal lands under the variant it names.
  await page.getByRole("button", { name: "Save draft" }).click();
  const second = page.getByLabel("Text of variant 2");
  await expect(second).toHaveAttribute("aria-invalid", "true");
  await expect(second).toHaveAccessibleDescription(/nickname/);
  // The form's own check names its field the same way.
  await page.getByLabel("Name of variant 2").fill("a");
  await page.getByRole("button", { name: "Save draft" }).click();
  await expect(page.getByLabel("Name of variant 2")).toHaveAccessibleDescription(/used twice/);

  await page.getByLabel("Name of variant 2").fill("B");
  await second.fill("Spring sale: 25% off, today only");
  await page.getByLabel("Decide after (minutes)").fill("90");
  await page.getByRole("button", { name: "Estimate cost" }).click();
  // Recipients of each part of the split: half of 10 in the test, dealt out A, B, A, B, A.
  const split = page.getByRole("table", { name: "A/B split" });
  const recipients = (table: Locator, row: RegExp) =>
    table.getByRole("row", { name: row }).getByRole("cell").first();
  await expect(recipients(split, /^Test: A/)).toHaveText("3");
  await expect(recipients(split, /^Test: B/)).toHaveText("2");
  await expect(recipients(split, /^Remainder \(as [AB]\)/)).toHaveText("5");
  // The refusals of the earlier save are gone once the estimate saved the draft.
  await expect(page.getByLabel("Name of variant 2")).not.toHaveAttribute("aria-invalid", "true");
  await expect(second).not.toHaveAttribute("aria-invalid", "true");
  await check(page, "composer-ab");
  const drafts = (await api(request, "GET", "/campaigns?status=draft"))!.items as {
    id: number;
    name: string;
    variants: { name: string; message: { text: string } }[];
    abTest: { testShare: number; metric: string; decideAfterMinutes: number };
  }[];
  const stored = drafts.find((c) => c.name === "Spring A/B")!;
  expect(stored.variants.map((v) => [v.name, v.message.text])).toEqual([
    ["A", "Spring sale: 20% off"],
    ["B", "Spring sale: 25% off, today only"],
  ]);
  expect(stored.abTest).toMatchObject({
    testShare: 0.5,
    metric: "delivered",
    decideAfterMinutes: 90,
  });

  await page.getByRole("button", { name: "Confirm" }).click();
  await expect(page).toHaveURL(new RegExp(`/campaigns/${stored.id}$`));
  // Each variant's recipients (the cell after its message) and its delivered rate.
  const variants = page.getByRole("table", { name: "A/B test" });
  const variantCell = (row: RegExp, index: number) =>
    variants.getByRole("row", { name: row }).getByRole("cell").nth(index);
  await expect(variantCell(/^A /, 1)).toHaveText("3");
  await expect(variantCell(/^B /, 1)).toHaveText("2");
  await expect(variantCell(/^A /, 6)).toHaveText(/^\d+\.\d%$/);
  await expect(page.getByTestId("ab-winner")).toHaveText("No winner yet.");

  // A viewer sees the test but is offered no decision.
  const viewerContext = await browser.newContext({ baseURL: test.info().project.use.baseURL });
  const viewer = await viewerContext.newPage();
  await signIn(viewer, VIEWER);
  await viewer.goto(`/campaigns/${stored.id}`);
  await expect(viewer.getByRole("table", { name: "A/B test" })).toBeVisible();
  await expect(viewer.getByRole("button", { name: "Decide now" })).toHaveCount(0);
  await viewerContext.close();

  await page.getByLabel("Winning variant").selectOption("B");
  await page.getByRole("button", { name: "Decide now" }).click();
  await expect(page.getByTestId("ab-winner")).toContainText("Winner: B, decided");
  await expect(page.getByRole("button", { name: "Decide now" })).toHaveCount(0);
  // The rest of the audience goes out as B.
  await expect(page.getByText("completed", { exact: true })).toBeVisible({ timeout: 60_000 });
  await expect(variantCell(/^B /, 1)).toHaveText("7");
  await expect(variantCell(/^A /, 1)).toHaveText("3");
  const decided = await api(request, "GET", `/campaigns/${stored.id}`);
  expect((decided!.abTest as { winner: string }).winner).toBe("B");
  await check(page, "campaign-ab");
});

test("an A/B test by unique clicks shows each variant's clicks and click rate", async ({
  page,
  request,
}) => {
  test.setTimeout(120_000);
  await api(request, "PUT", "/account/settings", { approvalRequired: false });
  const list = await api(request, "POST", "/lists", { name: "Click testers" });
  await api(request, "POST", `/lists/${String(list!.id)}/contacts`, {
    contacts: Array.from({ length: 4 }, (_, i) => ({ phone: `+3365555000${i + 1}` })),
  });
  const campaign = await api(request, "POST", "/campaigns", {
    name: "Clicks decide",
    channel: "sms",
    variants: [
      { name: "Short", message: { text: "Sale: https://shop.example.com/a" } },
      { name: "Long", message: { text: "Our spring sale is on: https://shop.example.com/b" } },
    ],
    abTest: { testShare: 0.5, metric: "uniqueClicks", decideAfterMinutes: 600 },
    listIds: [list!.id],
    trackLinks: true,
  });
  const id = String(campaign!.id);
  await api(request, "PUT", `/campaigns/${id}/confirm`, {});
  // The test share (one recipient per variant) is handed over; the rest waits.
  await expect
    .poll(async () => {
      const c = (await api(request, "GET", `/campaigns/${id}`))!;
      const s = c.stats as { queued: number; sending: number; recipients: number };
      return s.recipients > 0 && s.queued + s.sending === 0;
    })
    .toBe(true);
  const code = sql(
    `SELECT l.code FROM link l JOIN message m ON m.id = l.message_id ` +
      `WHERE l.campaign_id = ${id} AND m.variant = 'Long' LIMIT 1`,
  );
  for (let i = 0; i < 2; i++) {
    expect((await request.get(`/l/${code}`, { maxRedirects: 0 })).status()).toBe(302);
  }

  await signIn(page, MANAGER);
  await page.goto(`/campaigns/${id}`);
  const variants = page.getByRole("table", { name: "A/B test" });
  const cells = (row: RegExp) => variants.getByRole("row", { name: row }).getByRole("cell");
  // Message, recipients, sent, delivered, read, failed, clicks, unique clicks, the rates.
  await expect(cells(/^Long /).nth(1)).toHaveText("1");
  await expect(cells(/^Long /).nth(6)).toHaveText("2");
  await expect(cells(/^Long /).nth(7)).toHaveText("1");
  await expect(cells(/^Long /).nth(9)).toHaveText("100.0%");
  await expect(cells(/^Short /).nth(7)).toHaveText("0");
  await expect(cells(/^Short /).nth(9)).toHaveText("0.0%");
  await expect(page.getByText(/the best unique click rate wins 600 minutes/)).toBeVisible();
  await check(page, "campaign-ab-clicks");
  // Not waited for: the test is cancelled with the rest of its audience.
  await api(request, "PUT", `/campaigns/${id}/cancel`);
});

test("a manager edits a hook; an internal address is refused with its reason", async ({
  page,
  request,
}) => {
  const hook = await api(request, "POST", "/hooks", {
    url: "http://127.0.0.1:9/first",
    events: ["message.sent"],
  });
  const hookId = Number(hook!.id);
  await signIn(page, MANAGER);
  await page.getByRole("link", { name: "Hooks" }).click();
  const row = page.getByRole("row", { name: /127\.0\.0\.1:9\/first/ });
  await row.getByRole("button", { name: `Edit hook ${hookId}` }).click();
  const form = page.getByRole("form", { name: `Edit hook ${hookId}` });
  const url = form.getByLabel("URL of the hook");
  await expect(url).toHaveValue("http://127.0.0.1:9/first");

  await url.fill("https://169.254.169.254/latest/meta-data");
  await form.getByRole("button", { name: "Save hook" }).click();
  await expect(url).toHaveAttribute("aria-invalid", "true");
  await expect(url).toHaveAccessibleDescription(/internal address \(169\.254\.169\.254\)/);
  expect((await api(request, "GET", `/hooks/${hookId}`))!.url).toBe("http://127.0.0.1:9/first");

  await url.fill("http://127.0.0.1:9/second");
  const events = form.getByRole("group", { name: "Events of the hook" });
  await events.getByLabel("message.sent").uncheck();
  await events.getByLabel("message.delivered").check();
  await events.getByLabel("message.failed").check();
  await form.getByLabel(/^Enabled/).uncheck();
  await form.getByRole("button", { name: "Save hook" }).click();
  await expect(form.getByRole("status")).toHaveText("Saved.");
  await check(page, "hook-edit");

  await page.reload();
  const edited = page.getByRole("row", { name: /127\.0\.0\.1:9\/second/ });
  await expect(edited).toContainText("message.delivered, message.failed");
  await expect(edited).toContainText("disabled");
  const stored = await api(request, "GET", `/hooks/${hookId}`);
  expect(stored).toMatchObject({
    url: "http://127.0.0.1:9/second",
    events: ["message.delivered", "message.failed"],
    enabled: false,
  });
  await api(request, "DELETE", `/hooks/${hookId}`);
});
