// A campaign's A/B test: each variant with its counters and its rate of the metric, the
// winner once decided, and for a manager the early decision.
import { useState } from "react";
import { metricRate, percentText } from "../abtest";
import { call, client } from "../api/client";
import type { Campaign, Variant } from "../api/types";
import { ErrorText, Field, StatusBadge } from "../components/ui";
import { formatCount, formatDateTime, formatPercent } from "../format";
import { useAction, useLoad } from "../hooks";
import { useSession } from "../session";

// The API decides early while the campaign sends or is paused, and only once.
const DECIDABLE = ["sending", "paused"];

export function AbTestResults({
  campaign,
  onChange,
}: {
  campaign: Campaign;
  onChange: (campaign: Campaign) => void;
}) {
  const { can } = useSession();
  const ab = campaign.abTest;
  const shown = campaign.variants ?? [];
  // Live events carry the campaign without its variants' counters: read them afresh then.
  const stale = shown.some((v) => v.stats === null);
  const fresh = useLoad(
    () =>
      stale
        ? call(
            client.GET("/campaigns/{campaign_id}", {
              params: { path: { campaign_id: campaign.id } },
            }),
          )
        : Promise.resolve(null),
    `ab-${campaign.id}-${stale}-${JSON.stringify(campaign.stats)}-${ab?.winner ?? ""}`,
  );
  const variants = stale ? (fresh.data?.variants ?? shown) : shown;
  const [choice, setChoice] = useState(shown[0]?.name ?? "");
  const deciding = useAction();
  if (!ab) return null;
  const decide = () =>
    deciding.run(async () =>
      onChange(
        await call(
          client.PUT("/campaigns/{campaign_id}/abTest/winner", {
            params: { path: { campaign_id: campaign.id } },
            body: { name: choice },
          }),
        ),
      ),
    );
  const byClicks = ab.metric === "uniqueClicks";
  return (
    <section className="card" aria-labelledby="ab-results-title">
      <h2 id="ab-results-title">A/B test</h2>
      <p className="muted">
        {percentText(ab.testShare)}% of the audience in the test, split between{" "}
        {formatCount(variants.length)} variants; the best{" "}
        {byClicks ? "unique click rate" : "delivered rate"} wins{" "}
        {formatCount(ab.decideAfterMinutes)} minutes after the last test message is sent.
        {ab.testStartedAt ? ` Test started ${formatDateTime(ab.testStartedAt)}.` : ""}
      </p>
      <p role="status" data-testid="ab-winner">
        {ab.winner ? (
          <>
            Winner: <strong>{ab.winner}</strong>, decided {formatDateTime(ab.decidedAt)}.{" "}
            <span className="muted">
              Its counters include the rest of the audience, which gets its message.
            </span>
          </>
        ) : (
          "No winner yet."
        )}
      </p>
      <table aria-labelledby="ab-results-title">
        <thead>
          <tr>
            <th scope="col">Variant</th>
            <th scope="col">Message</th>
            <th scope="col" className="num">
              Recipients
            </th>
            <th scope="col" className="num">
              Sent
            </th>
            <th scope="col" className="num">
              Delivered
            </th>
            <th scope="col" className="num">
              Read
            </th>
            <th scope="col" className="num">
              Failed
            </th>
            {campaign.trackLinks && (
              <>
                <th scope="col" className="num">
                  Clicks
                </th>
                <th scope="col" className="num">
                  Unique clicks
                </th>
              </>
            )}
            <th scope="col" className="num">
              Delivered rate
            </th>
            {campaign.trackLinks && (
              <th scope="col" className="num">
                Unique click rate
              </th>
            )}
          </tr>
        </thead>
        <tbody>
          {variants.map((v) => (
            <VariantRow
              key={v.name}
              variant={v}
              winner={ab.winner === v.name}
              clicks={campaign.trackLinks}
            />
          ))}
        </tbody>
      </table>
      {can("manager") && !ab.winner && DECIDABLE.includes(campaign.status) && (
        <div className="inline">
          <Field label="Winning variant">
            {(p) => (
              <select {...p} value={choice} onChange={(e) => setChoice(e.target.value)}>
                {variants.map((v) => (
                  <option key={v.name}>{v.name}</option>
                ))}
              </select>
            )}
          </Field>
          <button type="button" onClick={() => void decide()} disabled={deciding.busy || !choice}>
            Decide now
          </button>
        </div>
      )}
      <ErrorText error={deciding.error} />
    </section>
  );
}

function VariantRow({
  variant,
  winner,
  clicks,
}: {
  variant: Variant;
  winner: boolean;
  /** The campaign tracks links: the variant's clicks and click rate are shown. */
  clicks: boolean;
}) {
  const s = variant.stats;
  const text = variant.message.text;
  const templateId = variant.message.templateId;
  return (
    <tr>
      <th scope="row">
        {variant.name} {winner && <StatusBadge status="winner" />}
      </th>
      <td className="message-text">
        {typeof text === "string"
          ? text
          : typeof templateId === "number"
            ? `Template ${templateId}`
            : "—"}
      </td>
      <td className="num">{formatCount(s?.recipients)}</td>
      <td className="num">{formatCount(s?.sent)}</td>
      <td className="num">{formatCount(s?.delivered)}</td>
      <td className="num">{formatCount(s?.read)}</td>
      <td className="num">{formatCount(s?.failed)}</td>
      {clicks && (
        <>
          <td className="num">{formatCount(s?.clicks)}</td>
          <td className="num">{formatCount(s?.uniqueClicks)}</td>
        </>
      )}
      <td className="num">{formatPercent(metricRate("delivered", s))}</td>
      {clicks && <td className="num">{formatPercent(metricRate("uniqueClicks", s))}</td>}
    </tr>
  );
}
