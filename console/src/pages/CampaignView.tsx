// One campaign: status, live counters, charts, cost, controls and per-recipient results.
import { useMemo, useState } from "react";
import { Link, useParams } from "react-router";
import { ApiError, call, client, errorText } from "../api/client";
import {
  MESSAGE_STATUSES,
  type Campaign,
  type MessagePage,
  type MessageStatus,
} from "../api/types";
import { Chart } from "../components/Chart";
import {
  ErrorText,
  Field,
  LoadError,
  Loading,
  PageHeader,
  Pager,
  ProgressBar,
  Stat,
  StatusBadge,
} from "../components/ui";
import { useEvents } from "../events";
import {
  deliveryRate,
  formatCount,
  formatCredits,
  formatDateTime,
  formatPercent,
  progress,
} from "../format";
import { useAction, useLoad } from "../hooks";
import { useSession } from "../session";
import { AbTestResults } from "./CampaignAbTest";
import { DeliveryRules, Links } from "./CampaignDelivery";
import { Composer } from "./Composer";

const LIMIT = 50;
const COLORS: Record<string, string> = {
  queued: "#9aa5b1",
  sending: "#7b93db",
  sent: "#4a6fa5",
  delivered: "#2f7d5b",
  read: "#1f5f45",
  failed: "#b23b3b",
  skipped: "#c08a2e",
  expired: "#7b6f5f",
};

interface Sample {
  at: number;
  delivered: number;
  failed: number;
}

export default function CampaignView() {
  const { id } = useParams();
  const campaignId = Number(id);
  const loaded = useLoad(
    () =>
      call(
        client.GET("/campaigns/{campaign_id}", { params: { path: { campaign_id: campaignId } } }),
      ),
    `campaign-${id}`,
  );
  if (!loaded.data) {
    return loaded.error ? (
      <>
        <PageHeader title="Campaign" />
        <LoadError error={loaded.error} />
      </>
    ) : (
      <Loading what="the campaign" />
    );
  }
  if (loaded.data.status === "draft") return <Composer campaign={loaded.data} />;
  return <CampaignDetail initial={loaded.data} />;
}

function CampaignDetail({ initial }: { initial: Campaign }) {
  const { can } = useSession();
  const [campaign, setCampaign] = useState(initial);
  const [samples, setSamples] = useState<Sample[]>(() => [sample(initial)]);
  useEvents<Campaign>(
    `/campaigns/${initial.id}/events`,
    "campaign.updated",
    (next) => {
      setCampaign(next);
      setSamples((prev) => [...prev.slice(-599), sample(next)]);
    },
    () =>
      call(
        client.GET("/campaigns/{campaign_id}", { params: { path: { campaign_id: initial.id } } }),
      ),
  );
  const control = useAction();
  const act = (verb: "pause" | "resume" | "cancel" | "approve") =>
    control.run(async () => {
      const path = { campaign_id: campaign.id };
      const next =
        verb === "pause"
          ? await call(client.PUT("/campaigns/{campaign_id}/pause", { params: { path } }))
          : verb === "resume"
            ? await call(client.PUT("/campaigns/{campaign_id}/resume", { params: { path } }))
            : verb === "cancel"
              ? await call(client.PUT("/campaigns/{campaign_id}/cancel", { params: { path } }))
              : await call(client.PUT("/campaigns/{campaign_id}/approve", { params: { path } }));
      setCampaign(next);
    });
  const [rejectNote, setRejectNote] = useState("");
  const reject = useAction();
  const s = campaign.stats;
  const split = useMemo(
    () => MESSAGE_STATUSES.map((status) => ({ status, count: s[status as keyof typeof s] ?? 0 })),
    [s],
  );
  const splitChart = useMemo(
    () => ({
      x: split.map((_, i) => i),
      xLabels: split.map((p) => p.status),
      series: [{ label: "Messages", color: "#1d4e89", values: split.map((p) => p.count) }],
    }),
    [split],
  );
  const overTime = useMemo(
    () => ({
      x: samples.map((p) => p.at),
      series: [
        { label: "Delivered", color: COLORS.delivered!, values: samples.map((p) => p.delivered) },
        { label: "Failed", color: COLORS.failed!, values: samples.map((p) => p.failed) },
      ],
    }),
    [samples],
  );
  const manager = can("manager");

  return (
    <>
      <PageHeader title={campaign.name}>
        <span>
          Status: <StatusBadge status={campaign.status} />
        </span>
      </PageHeader>
      <p className="muted">
        {campaign.channel.toUpperCase()} · created {formatDateTime(campaign.createdAt)}
        {campaign.scheduledAt ? ` · scheduled for ${formatDateTime(campaign.scheduledAt)}` : ""}
        {campaign.startedAt ? ` · started ${formatDateTime(campaign.startedAt)}` : ""}
        {campaign.completedAt ? ` · completed ${formatDateTime(campaign.completedAt)}` : ""}
      </p>

      <MessageSummary campaign={campaign} />
      {manager && (
        <div className="actions">
          {campaign.status === "sending" && (
            <button type="button" onClick={() => void act("pause")} disabled={control.busy}>
              Pause
            </button>
          )}
          {campaign.status === "paused" && (
            <button type="button" onClick={() => void act("resume")} disabled={control.busy}>
              Resume
            </button>
          )}
          {["scheduled", "sending", "paused"].includes(campaign.status) && (
            <button
              type="button"
              className="danger"
              onClick={() => void act("cancel")}
              disabled={control.busy}
            >
              Cancel
            </button>
          )}
          {campaign.status === "awaiting_approval" && (
            <button
              type="button"
              className="primary"
              onClick={() => void act("approve")}
              disabled={control.busy}
            >
              Approve
            </button>
          )}
          <ErrorText error={control.error} />
        </div>
      )}
      {manager && campaign.status === "awaiting_approval" && (
        <div className="inline">
          <Field label="Reason for rejecting">
            {(p) => (
              <input {...p} value={rejectNote} onChange={(e) => setRejectNote(e.target.value)} />
            )}
          </Field>
          <button
            type="button"
            onClick={() =>
              void reject.run(async () =>
                setCampaign(
                  await call(
                    client.PUT("/campaigns/{campaign_id}/reject", {
                      params: { path: { campaign_id: campaign.id } },
                      body: { note: rejectNote },
                    }),
                  ),
                ),
              )
            }
          >
            Reject
          </button>
          <ErrorText error={reject.error} />
        </div>
      )}
      {campaign.status === "scheduled" && can("editor") && (
        <p>
          <Link to={`/campaigns/${campaign.id}/edit`}>Edit the scheduled campaign</Link>
        </p>
      )}

      <section className="card" aria-labelledby="counters-title">
        <h2 id="counters-title">Recipients</h2>
        <ProgressBar value={progress(s)} label="Campaign progress" />
        <dl className="stats" data-testid="counters">
          <Stat label="Recipients" value={formatCount(s.recipients)} />
          {MESSAGE_STATUSES.map((status) => (
            <Stat
              key={status}
              label={status}
              value={formatCount(s[status as keyof typeof s] ?? 0)}
            />
          ))}
          <Stat label="Delivery rate" value={formatPercent(deliveryRate(s))} />
          {campaign.trackLinks && <Stat label="Clicks" value={formatCount(s.clicks)} />}
          {campaign.trackLinks && (
            <Stat label="Unique clicks" value={formatCount(s.uniqueClicks)} />
          )}
        </dl>
        <div className="split" role="img" aria-label="Status split">
          {split
            .filter((p) => p.count > 0)
            .map((p) => (
              <span
                key={p.status}
                title={`${p.status}: ${p.count}`}
                style={{ flexGrow: p.count, background: COLORS[p.status] }}
              />
            ))}
        </div>
      </section>

      <AbTestResults campaign={campaign} onChange={setCampaign} />
      <DeliveryRules campaign={campaign} />
      {campaign.trackLinks && <Links campaignId={campaign.id} clicks={s.clicks} />}

      <section className="card" aria-labelledby="cost-title">
        <h2 id="cost-title">Cost</h2>
        <dl className="stats">
          <Stat label="Reserved" value={formatCredits(campaign.cost.reserved)} />
          <Stat label="Spent" value={formatCredits(campaign.cost.spent)} />
        </dl>
      </section>

      {s.recipients > 0 && (
        <div className="charts">
          <Chart title="Delivered and failed over time (while this page is open)" {...overTime} />
          <Chart title="Status split" kind="bars" {...splitChart} />
        </div>
      )}

      <Recipients
        campaignId={campaign.id}
        version={campaign.updatedAt}
        variants={Boolean(campaign.variants?.length)}
      />
    </>
  );
}

function sample(c: Campaign): Sample {
  return {
    at: Date.now() / 1000,
    delivered: c.stats.delivered + c.stats.read,
    failed: c.stats.failed,
  };
}

function Recipients({
  campaignId,
  version,
  variants,
}: {
  campaignId: number;
  version: string;
  /** An A/B campaign: each recipient's variant is shown. */
  variants: boolean;
}) {
  const [status, setStatus] = useState("");
  const [offset, setOffset] = useState(0);
  const page = useLoad(
    () =>
      call(
        client.GET("/campaigns/{campaign_id}/messages", {
          params: {
            path: { campaign_id: campaignId },
            query: {
              limit: LIMIT,
              offset,
              ...(status ? { status: status as Exclude<MessageStatus, "expired"> } : {}),
            },
          },
        }),
      ) as Promise<MessagePage>,
    `${campaignId}-${status}-${offset}-${version}`,
  );
  const [downloadError, setDownloadError] = useState<string | null>(null);
  const download = async () => {
    setDownloadError(null);
    const query = status ? `?status=${encodeURIComponent(status)}` : "";
    try {
      const response = await fetch(`/campaigns/${campaignId}/messages${query}`, {
        headers: { Accept: "text/csv" },
        credentials: "same-origin",
      });
      if (!response.ok) {
        const body = (await response.json().catch(() => ({}))) as Record<string, unknown>;
        throw new ApiError(response.status, body);
      }
      const url = URL.createObjectURL(await response.blob());
      const link = document.createElement("a");
      link.href = url;
      link.download = `campaign-${campaignId}-recipients.csv`;
      document.body.append(link);
      link.click();
      link.remove();
      URL.revokeObjectURL(url);
    } catch (error) {
      setDownloadError(errorText(error));
    }
  };
  return (
    <section className="card" aria-labelledby="recipients-title">
      <h2 id="recipients-title">Per recipient</h2>
      <div className="inline">
        <Field label="Recipient status">
          {(p) => (
            <select
              {...p}
              value={status}
              onChange={(e) => {
                setStatus(e.target.value);
                setOffset(0);
              }}
            >
              <option value="">Any</option>
              {/* The API filters by every status but `expired`. */}
              {MESSAGE_STATUSES.filter((s) => s !== "expired").map((s) => (
                <option key={s}>{s}</option>
              ))}
            </select>
          )}
        </Field>
        <button type="button" onClick={() => void download()}>
          Download CSV
        </button>
      </div>
      {downloadError && (
        <p className="action-error" role="alert">
          {downloadError}
        </p>
      )}
      <LoadError error={page.error} />
      {page.data && (
        <>
          <table>
            <thead>
              <tr>
                <th scope="col">Phone</th>
                <th scope="col">Channel</th>
                {variants && <th scope="col">Variant</th>}
                <th scope="col">Status</th>
                <th scope="col" className="num">
                  Units
                </th>
                <th scope="col" className="num">
                  Price
                </th>
                <th scope="col">Error</th>
                <th scope="col">Updated</th>
              </tr>
            </thead>
            <tbody>
              {page.data.items.map((m) => (
                <tr key={m.id}>
                  <td>
                    <Link to={`/contacts/${m.contactId}`}>{m.phone}</Link>
                  </td>
                  <td>{m.channel}</td>
                  {variants && <td>{m.variant ?? "—"}</td>}
                  <td>
                    <StatusBadge status={m.status} />
                  </td>
                  <td className="num">{formatCount(m.units)}</td>
                  <td className="num">{formatCredits(m.price)}</td>
                  <td>{m.errorMessage ?? m.errorCode ?? ""}</td>
                  <td>{formatDateTime(m.updatedAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {page.data.total === 0 && <p className="muted">No recipient yet.</p>}
          <Pager
            label="Recipients"
            total={page.data.total}
            limit={LIMIT}
            offset={offset}
            onChange={setOffset}
          />
        </>
      )}
    </section>
  );
}

function MessageSummary({ campaign }: { campaign: Campaign }) {
  // An A/B campaign has no message of its own: its variants are listed with their results.
  const message = (campaign.message ?? {}) as { text?: string | null; templateId?: number | null };
  const approval = campaign.approval;
  const who = (p: { name: string | null; email: string | null } | null | undefined) =>
    p ? (p.name ?? p.email ?? "someone") : "someone";
  return (
    <section className="card" aria-labelledby="message-title">
      <h2 id="message-title">Message</h2>
      <p className="message-text">
        {message.text ??
          (message.templateId
            ? `Template ${message.templateId}`
            : campaign.variants?.length
              ? `A/B test of ${campaign.variants.length} variants (below)`
              : "—")}
      </p>
      <p className="muted">
        Sender {campaign.sender ?? "default"} · lists {campaign.listIds.join(", ") || "none"}
        {campaign.excludeListIds.length ? ` · excluding ${campaign.excludeListIds.join(", ")}` : ""}
      </p>
      {approval && (
        <p>
          Submitted by {who(approval.submittedBy)} on {formatDateTime(approval.submittedAt)}
          {approval.note ? ` (“${approval.note}”)` : ""}
          {approval.decision
            ? ` · ${approval.decision} by ${who(approval.decidedBy)} on ${formatDateTime(approval.decidedAt)}${approval.decisionNote ? ` (“${approval.decisionNote}”)` : ""}`
            : " · awaiting a decision"}
        </p>
      )}
    </section>
  );
}
