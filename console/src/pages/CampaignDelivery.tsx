// The campaign page's delivery rules (purpose, send window, expiry, the held recipients of
// its estimate) and its tracked links with their clicks.
import { useState } from "react";
import { call, client } from "../api/client";
import type { Campaign } from "../api/types";
import { LoadError, Pager, Stat } from "../components/ui";
import { formatWindow, scheduleOf } from "../delivery";
import { formatCount, formatDateTime } from "../format";
import { useLoad } from "../hooks";

const LIMIT = 20;

export function DeliveryRules({ campaign }: { campaign: Campaign }) {
  const schedule = scheduleOf(campaign.estimate);
  return (
    <section className="card" aria-labelledby="rules-title">
      <h2 id="rules-title">Delivery rules</h2>
      <dl className="stats" data-testid="delivery-rules">
        <Stat label="Purpose" value={campaign.purpose} />
        <Stat
          label="Send window"
          value={campaign.sendWindow ? formatWindow(campaign.sendWindow) : "none"}
        />
        <Stat
          label="Expires"
          value={campaign.expiresAt ? formatDateTime(campaign.expiresAt) : "never"}
        />
        {campaign.trackLinks && <Stat label="Links" value="tracked" />}
      </dl>
      {schedule && (
        <>
          <h3>Sending hours (at the last estimate)</h3>
          <dl className="stats" data-testid="schedule">
            <Stat label="Sendable now" value={formatCount(schedule.sendableNow)} />
            <Stat label="Held" value={formatCount(schedule.held)} />
            <Stat label="First send" value={formatDateTime(schedule.firstSendAt)} />
            <Stat label="Last window opens" value={formatDateTime(schedule.lastWindowOpensAt)} />
          </dl>
        </>
      )}
    </section>
  );
}

/** Each original URL with its clicks; reloaded when the campaign's click count moves. */
export function Links({ campaignId, clicks }: { campaignId: number; clicks: number }) {
  const [offset, setOffset] = useState(0);
  const links = useLoad(
    () =>
      call(
        client.GET("/campaigns/{campaign_id}/links", {
          params: { path: { campaign_id: campaignId }, query: { limit: LIMIT, offset } },
        }),
      ),
    `links-${campaignId}-${offset}-${clicks}`,
  );
  return (
    <section className="card" aria-labelledby="links-title">
      <h2 id="links-title">Links</h2>
      <LoadError error={links.error} />
      {links.data && (
        <>
          <table aria-labelledby="links-title">
            <thead>
              <tr>
                <th scope="col">URL</th>
                <th scope="col" className="num">
                  Clicks
                </th>
                <th scope="col" className="num">
                  Unique clicks
                </th>
              </tr>
            </thead>
            <tbody>
              {links.data.items.map((link) => (
                <tr key={link.url}>
                  <td className="mono">{link.url}</td>
                  <td className="num">{formatCount(link.clicks)}</td>
                  <td className="num">{formatCount(link.uniqueClicks)}</td>
                </tr>
              ))}
              {links.data.items.length === 0 && (
                <tr>
                  <td colSpan={3} className="muted">
                    No links in the message.
                  </td>
                </tr>
              )}
            </tbody>
          </table>
          <Pager
            label="Links"
            total={links.data.total}
            limit={LIMIT}
            offset={offset}
            onChange={setOffset}
          />
        </>
      )}
    </section>
  );
}
