// A person runs a campaign from the console alone: sign in, import a list, compose an SMS
// with an emoji, estimate, confirm, watch it complete live, download the results, sign out;
// a viewer is not offered what their role may not do. Every page passes axe and is
// photographed into test-results/screenshots.
import AxeBuilder from "@axe-core/playwright";
import { expect, test, type Page } from "@playwright/test";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { MANAGER, OWNER, VIEWER, seed } from "./seed";

const SHOTS = resolve(import.meta.dirname, "../../test-results/screenshots");

async function check(page: Page, name: string) {
  // Not "networkidle": live pages keep an event stream open for as long as they are shown.
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
  await page.goto("/");
  await expect(page).toHaveURL(/\/sign-in$/);
  await page.getByLabel("Email").fill(who.email);
  await page.getByLabel("Password").fill(who.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("heading", { name: "Dashboard" })).toBeVisible();
}

test.describe.configure({ mode: "serial" });

test("a wrong password is refused in words next to the form", async ({ page }) => {
  await page.goto("/sign-in");
  await check(page, "sign-in");
  // By keyboard alone: Tab to each field, Enter to submit.
  await page.keyboard.press("Tab");
  await expect(page.getByLabel("Email")).toBeFocused();
  await page.keyboard.type(OWNER.email);
  await page.keyboard.press("Tab");
  await expect(page.getByLabel("Password")).toBeFocused();
  await page.keyboard.type("not the password");
  await page.keyboard.press("Enter");
  await expect(page.getByRole("alert")).toBeVisible();
  await expect(page).toHaveURL(/\/sign-in$/);
});

test("an owner imports a list, sends an SMS with an emoji and watches it complete", async ({
  page,
}) => {
  test.setTimeout(180_000);
  await signIn(page, OWNER);
  await expect(page.getByText("100.00").first()).toBeVisible();
  await check(page, "dashboard");

  // A list by CSV import: three good rows, one rejected.
  await page.getByRole("link", { name: "Lists" }).click();
  await page.getByLabel("New list name").fill("Customers");
  await page.getByRole("button", { name: "Create list" }).click();
  await expect(page.getByRole("heading", { name: "Customers" })).toBeVisible();
  const csv = [
    "phone,firstName,lastName,city",
    "+33612345678,Ann,Martin,Lyon",
    "+33612345679,Bob,Durand,Paris",
    "+33612340001,Cid,Petit,Nice",
    "not-a-phone,Dee,Roux,Lille",
  ].join("\n");
  await page.getByLabel("CSV file").setInputFiles({
    name: "customers.csv",
    mimeType: "text/csv",
    buffer: Buffer.from(csv),
  });
  await page.getByRole("button", { name: "Import" }).click();
  await expect(page.getByTestId("import-status")).toContainText("Import done");
  await expect(page.getByTestId("import-status")).toContainText("3 new");
  await expect(page.getByRole("table", { name: "Rejected rows" })).toContainText("not-a-phone");
  await expect(page.getByRole("link", { name: "+33612345678" })).toBeVisible();
  await check(page, "list");
  await page.getByRole("link", { name: "Lists" }).click();
  await expect(page.getByRole("link", { name: "Customers" })).toBeVisible();
  await check(page, "lists");

  // Compose: the emoji forces UCS-2 and the composer says so.
  await page.getByRole("link", { name: "Campaigns" }).click();
  await check(page, "campaigns");
  await page.getByRole("link", { name: "New campaign" }).click();
  await page.getByLabel("Name").fill("Spring sale");
  await page
    .getByRole("checkbox", { name: /Customers/ })
    .first()
    .check();
  await page.getByLabel("Sender").fill("Clarion");
  await page.getByLabel("Message text").fill("Hi {{firstName}}, spring is here 🌷 20% off today");
  await expect(page.getByTestId("counter")).toContainText("UCS-2");
  await expect(page.getByText("these characters force UCS-2")).toBeVisible();
  await expect(page.locator("mark")).toHaveText("🌷");
  await page.getByLabel("Preview for contact").selectOption({ label: "Ann Martin · +33612345678" });
  await expect(page.getByRole("figure", { name: "Phone preview" })).toContainText("Hi Ann, spring");
  await page.getByRole("button", { name: "Estimate cost" }).click();
  await expect(page.getByRole("table", { name: "Cost by country" })).toContainText("FR");
  await check(page, "composer");

  const reads: string[] = [];
  page.on("request", (r) => reads.push(new URL(r.url()).pathname));
  await page.getByRole("button", { name: "Confirm" }).click();
  await expect(page).toHaveURL(/\/campaigns\/\d+$/);
  const campaignPath = new URL(page.url()).pathname;
  // The page is not reloaded: the status and counters arrive over the event stream. A
  // campaign this small can be completed before the page has loaded; the page opens the
  // stream all the same, once it has shown what it read, so the request is waited for.
  await expect(page.getByText("completed", { exact: true })).toBeVisible({ timeout: 30_000 });
  await expect.poll(() => reads).toContain(`${campaignPath}/events`);
  expect(reads.filter((path) => path === campaignPath).length).toBeLessThanOrEqual(2);
  const counters = page.getByTestId("counters");
  await expect(counters).toContainText("Recipients3");
  await expect(counters).toContainText("delivered2");
  await expect(counters).toContainText("failed1");
  await check(page, "campaign");

  const download = page.waitForEvent("download");
  await page.getByRole("button", { name: "Download CSV" }).click();
  const file = await (await download).path();
  const text = readFileSync(file, "utf8");
  expect(text).toContain("+33612345678");
  expect(text.split("\n").filter(Boolean)).toHaveLength(4);

  // The other pages, each checked and photographed.
  await page.getByRole("link", { name: "Contacts" }).click();
  await page.getByLabel("Search by phone or name").fill("Ann");
  await page.getByRole("button", { name: "Search" }).click();
  await page.getByRole("link", { name: "+33612345678" }).click();
  await expect(page.getByLabel("First name")).toHaveValue("Ann");
  await page.getByRole("checkbox", { name: "whatsapp" }).check();
  await page.getByRole("button", { name: "Save contact" }).click();
  await expect(page.getByText("Saved.")).toBeVisible();
  await check(page, "contact");
  await page.getByRole("link", { name: "Contacts" }).click();
  await check(page, "contacts");

  await page.getByRole("link", { name: "Templates" }).click();
  await page.getByRole("link", { name: "New template" }).click();
  await page.getByLabel("Name").fill("Order ready");
  await page.getByLabel("Channel").selectOption("whatsapp");
  await page.getByLabel("Body").fill("Hello {{firstName}}, order {{order}} is ready");
  await expect(page.getByText("{{firstName}}, {{order}}", { exact: true })).toBeVisible();
  await check(page, "template");
  await page.getByRole("button", { name: "Save template" }).click();
  await expect(page.getByRole("link", { name: "Order ready" })).toBeVisible();
  await check(page, "templates");

  await page.getByRole("link", { name: "Statistics" }).click();
  await expect(page.getByRole("heading", { name: "Totals" })).toBeVisible();
  await check(page, "statistics");

  await page.getByRole("link", { name: "Settings" }).click();
  await expect(page.getByRole("cell", { name: VIEWER.email, exact: true })).toBeVisible();
  await check(page, "settings");

  await page.getByRole("link", { name: "Sign out" }).click();
  await expect(page.getByRole("button", { name: "Sign in" })).toBeVisible();
  await page.goto("/campaigns");
  await expect(page).toHaveURL(/\/sign-in$/);
});

test("a viewer reads a draft but is not offered Confirm", async ({ page, request }) => {
  const { key } = seed();
  const lists = await request.get("/lists", { headers: { Authorization: `Bearer ${key}` } });
  const listId = (await lists.json()).items[0].id as number;
  const created = await request.post("/campaigns", {
    headers: { Authorization: `Bearer ${key}` },
    data: {
      name: "Draft for review",
      channel: "sms",
      message: { text: "Hello" },
      listIds: [listId],
    },
  });
  expect(created.status()).toBe(201);
  const id = (await created.json()).id as number;

  await signIn(page, VIEWER);
  await page.getByRole("link", { name: "Campaigns" }).click();
  await expect(page.getByRole("link", { name: "New campaign" })).toHaveCount(0);
  await page.getByRole("link", { name: "Draft for review" }).click();
  await expect(page).toHaveURL(new RegExp(`/campaigns/${id}$`));
  await expect(page.getByText("Your role can read campaigns")).toBeVisible();
  for (const name of ["Confirm", "Schedule", "Estimate cost", "Send test", "Save draft"]) {
    await expect(page.getByRole("button", { name })).toHaveCount(0);
  }
  await page.getByRole("link", { name: "Settings" }).click();
  await expect(page.getByRole("button", { name: "Add user" })).toHaveCount(0);
  await check(page, "viewer-settings");
  await page.getByRole("link", { name: "Sign out" }).click();
  await expect(page.getByRole("button", { name: "Sign in" })).toBeVisible();
});

test("with approval required, one person submits and another approves", async ({ page }) => {
  test.setTimeout(120_000);
  await signIn(page, OWNER);
  await page.getByRole("link", { name: "Settings" }).click();
  const approval = page.getByRole("checkbox", { name: /another manager's approval/ });
  await approval.check();
  await expect(approval).toBeChecked();

  await page.getByRole("link", { name: "Campaigns" }).click();
  await page.getByRole("link", { name: "New campaign" }).click();
  await page.getByLabel("Name").fill("Needs a second pair of eyes");
  await page
    .getByRole("checkbox", { name: /Customers/ })
    .first()
    .check();
  await page.getByLabel("Message text").fill("Hello {{firstName}}");
  await expect(page.getByRole("button", { name: "Confirm" })).toHaveCount(0);
  await page.getByRole("button", { name: "Submit for approval" }).click();
  await expect(page.getByText("awaiting_approval", { exact: true })).toBeVisible();
  const url = page.url();
  // The submitter may not approve their own campaign: the API's words appear by the button.
  await page.getByRole("button", { name: "Approve" }).click();
  await expect(page.getByRole("alert")).toBeVisible();
  await check(page, "campaign-awaiting-approval");
  await page.getByRole("link", { name: "Sign out" }).click();

  await signIn(page, MANAGER);
  await page.goto(url);
  await page.getByRole("button", { name: "Approve" }).click();
  await expect(page.getByText("completed", { exact: true })).toBeVisible({ timeout: 30_000 });
  await page.getByRole("link", { name: "Settings" }).click();
  await expect(page.getByRole("checkbox", { name: /another manager's approval/ })).toBeDisabled();
});
