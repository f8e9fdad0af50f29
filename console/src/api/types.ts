// Shapes the console reads, named by the contract's paths so they follow the served schema.
import type { paths } from "./schema";

type JsonOf<R> = R extends { content: { "application/json": infer T } } ? T : never;
type Ok<Op> = Op extends { responses: infer Rs }
  ? 200 extends keyof Rs
    ? JsonOf<Rs[200]>
    : 201 extends keyof Rs
      ? JsonOf<Rs[201]>
      : never
  : never;

export type Account = Ok<paths["/account"]["get"]>;
export type Campaign = Ok<paths["/campaigns/{campaign_id}"]["get"]>;
export type CampaignPage = Ok<paths["/campaigns"]["get"]>;
/** The status filter of the campaign list (the API names every status it takes). */
export type CampaignStatusFilter = NonNullable<
  NonNullable<paths["/campaigns"]["get"]["parameters"]["query"]>["status"]
>;
export type Estimate = Ok<paths["/campaigns/{campaign_id}/calculateGoal"]["post"]>;
export type MessagePage = Ok<paths["/campaigns/{campaign_id}/messages"]["get"]>;
export type Message = MessagePage["items"][number];
export type Stats = Ok<paths["/campaigns/stats"]["get"]>;
export type Contact = Ok<paths["/contacts/{contact_id}"]["get"]>;
export type ContactList = Ok<paths["/lists/{list_id}"]["get"]>;
export type Import = Ok<paths["/imports/{import_id}"]["get"]>;
export type Template = Ok<paths["/templates/{template_id}"]["get"]>;
export type LedgerEntry = Ok<paths["/account/ledger"]["get"]>["items"][number];
export type Me = Ok<paths["/me"]["get"]>;
export type User = Ok<paths["/users/{user_id}"]["get"]>;
export type ApiKey = Ok<paths["/account/keys"]["get"]>["items"][number];
export type AccountSettings = Ok<paths["/account/settings"]["get"]>;
export type Preview = Ok<paths["/preview"]["post"]>;
export type CampaignStats = Campaign["stats"];
export type Compliance = Ok<paths["/account/compliance"]["get"]>;
export type ComplianceUpdate = NonNullable<
  paths["/account/compliance"]["put"]["requestBody"]
>["content"]["application/json"];
export type LinkStats = Ok<paths["/campaigns/{campaign_id}/links"]["get"]>["items"][number];
export type HistoryItem = Ok<paths["/contacts/{contact_id}/history"]["get"]>["items"][number];
export type Hook = Ok<paths["/hooks/{hook_id}"]["get"]>;
export type HookCreated = Ok<paths["/hooks"]["post"]>;
export type HookDelivery = Ok<paths["/hooks/{hook_id}/deliveries"]["get"]>["items"][number];
export type HookEvent = NonNullable<
  paths["/hooks"]["post"]["requestBody"]
>["content"]["application/json"]["events"][number];
export const HOOK_EVENTS = [
  "campaign.started",
  "campaign.completed",
  "campaign.paused",
  "campaign.cancelled",
  "message.sent",
  "message.delivered",
  "message.read",
  "message.failed",
  "message.expired",
  "message.clicked",
  "contact.opted_out",
  "contact.opted_in",
  "import.completed",
  "*",
] as const satisfies readonly HookEvent[];

export const ROLES = ["viewer", "editor", "manager", "owner"] as const;
export type Role = (typeof ROLES)[number];
export const CHANNELS = ["sms", "rcs", "whatsapp"] as const;
export type Channel = (typeof CHANNELS)[number];
export const MESSAGE_STATUSES = [
  "queued",
  "sending",
  "sent",
  "delivered",
  "read",
  "failed",
  "skipped",
  "expired",
] as const;
export type MessageStatus = (typeof MESSAGE_STATUSES)[number];

type CampaignCreateBody = NonNullable<
  paths["/campaigns"]["post"]["requestBody"]
>["content"]["application/json"];
/** One A/B variant of a create or update body. */
export type VariantBody = NonNullable<CampaignCreateBody["variants"]>[number];
/** The `abTest` of a create or update body. */
export type AbTestBody = NonNullable<CampaignCreateBody["abTest"]>;
export type AbTestMetric = AbTestBody["metric"];
/** A variant as the campaign shows it, with its counters (null in live events). */
export type Variant = NonNullable<Campaign["variants"]>[number];
export type AbEstimate = NonNullable<Estimate["abTest"]>;
