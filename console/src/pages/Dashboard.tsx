import { useMemo } from "react";
import { Link } from "react-router";
import { call, client } from "../api/client";
import type { Campaign } from "../api/types";
import { Chart } from "../components/Chart";
import { LoadError, Loading, PageHeader, ProgressBar, Stat } from "../components/ui";
import { useEvents } from "../events";
import {
  daysAgo,
  everyDay,
  formatCount,
  formatCredits,
  formatPercent,
  isoDay,
  progress,
} from "../format";
import { useLoad } from "../hooks";

const percent = (v: number) => formatPercent(v);

export default function Dashboard() {
  const account = useLoad(() => call(client.GET("/account")), "account");
  const sending = useLoad(
    () => call(client.GET("/campaigns", { params: { query: { status: "sending", limit: 20 } } })),
    "sending",
  );
  const from = isoDay(daysAgo(29));
  const to = isoDay(new Date());
  const stats = useLoad(
    () => call(client.GET("/campaigns/stats", { params: { query: { from, to } } })),
    `stats-${from}`,
  );

  // Live progress: the account stream tells about every campaign that changes.
  useEvents<Campaign>(
    "/events",
    "campaign.updated",
    (campaign) => {
      if (!sending.data) return;
      const others = sending.data.items.filter((c) => c.id !== campaign.id);
      const items = campaign.status === "sending" ? [campaign, ...others] : others;
      items.sort((a, b) => b.id - a.id);
      sending.setData({ ...sending.data, items, total: items.length });
      account.reload();
    },
    async () => {
      sending.reload();
      account.reload();
      return null;
    },
  );

  const chart = useMemo(() => {
    // A day without sends has no delivery rate (a gap) and spent nothing.
    const days = everyDay<{ date: string; deliveryRate: number | null; creditsSpent: number }>(
      from,
      to,
      stats.data?.byDay ?? [],
      (date) => ({ date, deliveryRate: null, creditsSpent: 0 }),
    );
    return {
      x: days.map((d) => Date.parse(`${d.date}T00:00:00Z`) / 1000),
      rate: [{ label: "Delivery rate", color: "#2f7d5b", values: days.map((d) => d.deliveryRate) }],
      spend: [
        { label: "Credits spent", color: "#1d4e89", values: days.map((d) => d.creditsSpent) },
      ],
    };
  }, [stats.data, from, to]);

  return (
    <>
      <PageHeader title="Dashboard" />
      <section aria-labelledby="credits-title" className="card">
        <h2 id="credits-title">Credits</h2>
        <LoadError error={account.error} />
        {account.data ? (
          <dl className="stats">
            <Stat label="Balance" value={formatCredits(account.data.balance)} />
            <Stat label="Reserved" value={formatCredits(account.data.reserved)} />
            <Stat label="Available" value={formatCredits(account.data.available)} />
          </dl>
        ) : (
          !account.error && <Loading what="credits" />
        )}
      </section>

      <section aria-labelledby="sending-title" className="card">
        <h2 id="sending-title">Sending now</h2>
        <LoadError error={sending.error} />
        {sending.data?.items.length === 0 && <p className="muted">No campaign is sending.</p>}
        <ul className="sending-list">
          {sending.data?.items.map((c) => (
            <li key={c.id}>
              <Link to={`/campaigns/${c.id}`}>{c.name}</Link>
              <ProgressBar value={progress(c.stats)} label={`${c.name} progress`} />
              <span className="muted">
                {formatCount(c.stats.recipients - c.stats.queued - c.stats.sending)} of{" "}
                {formatCount(c.stats.recipients)}
              </span>
            </li>
          ))}
        </ul>
      </section>

      <section aria-labelledby="month-title" className="card">
        <h2 id="month-title">Last 30 days</h2>
        <LoadError error={stats.error} />
        {stats.data && (
          <>
            <dl className="stats">
              <Stat label="Campaigns" value={formatCount(stats.data.campaigns)} />
              <Stat label="Recipients" value={formatCount(stats.data.recipients)} />
              <Stat label="Delivery rate" value={formatPercent(stats.data.deliveryRate)} />
              <Stat label="Credits spent" value={formatCredits(stats.data.creditsSpent)} />
            </dl>
            <div className="charts">
              <Chart
                title="Delivery rate by day"
                x={chart.x}
                series={chart.rate}
                yFormat={percent}
              />
              <Chart title="Credits spent by day" x={chart.x} series={chart.spend} kind="bars" />
            </div>
          </>
        )}
      </section>
    </>
  );
}
