import { useMemo, useState } from "react";
import { call, client } from "../api/client";
import { CHANNELS, type Stats } from "../api/types";
import { Chart } from "../components/Chart";
import { Field, LoadError, Loading, PageHeader, Stat } from "../components/ui";
import { daysAgo, everyDay, formatCount, formatCredits, formatPercent, isoDay } from "../format";
import { useLoad } from "../hooks";

const COUNTERS = [
  "recipients",
  "queued",
  "sending",
  "sent",
  "delivered",
  "read",
  "failed",
  "skipped",
  "expired",
] as const;

type Day = Stats["byDay"][number];
const EMPTY_DAY: Omit<Day, "date"> = {
  campaigns: 0,
  recipients: 0,
  queued: 0,
  sending: 0,
  sent: 0,
  delivered: 0,
  read: 0,
  failed: 0,
  skipped: 0,
  expired: 0,
  clicks: 0,
  uniqueClicks: 0,
  creditsSpent: 0,
  deliveryRate: 0,
};

export default function Statistics() {
  const [from, setFrom] = useState(isoDay(daysAgo(29)));
  const [to, setTo] = useState(isoDay(new Date()));
  const [channel, setChannel] = useState("");
  const stats = useLoad(
    () =>
      call(
        client.GET("/campaigns/stats", {
          params: {
            query: {
              ...(from ? { from } : {}),
              ...(to ? { to } : {}),
              ...(channel ? { channel } : {}),
            },
          },
        }),
      ),
    `${from}-${to}-${channel}`,
  );
  const charts = useMemo(() => {
    const days = stats.data
      ? everyDay(from, to, stats.data.byDay, (date) => ({ ...EMPTY_DAY, date }))
      : [];
    const channels = Object.entries(stats.data?.byChannel ?? {});
    return {
      x: days.map((d) => Date.parse(`${d.date}T00:00:00Z`) / 1000),
      byDay: [
        { label: "Delivered", color: "#2f7d5b", values: days.map((d) => d.delivered + d.read) },
        { label: "Failed", color: "#b23b3b", values: days.map((d) => d.failed) },
      ],
      channelX: channels.map((_, i) => i),
      byChannel: [
        { label: "Recipients", color: "#1d4e89", values: channels.map(([, c]) => c.recipients) },
      ],
      channelNames: channels.map(([name]) => name),
    };
  }, [stats.data, from, to]);
  const data = stats.data as (Record<string, number> & typeof stats.data) | null;

  return (
    <>
      <PageHeader title="Statistics" />
      <div className="filters">
        <Field label="From">
          {(p) => (
            <input {...p} type="date" value={from} onChange={(e) => setFrom(e.target.value)} />
          )}
        </Field>
        <Field label="To">
          {(p) => <input {...p} type="date" value={to} onChange={(e) => setTo(e.target.value)} />}
        </Field>
        <Field label="Channel">
          {(p) => (
            <select {...p} value={channel} onChange={(e) => setChannel(e.target.value)}>
              <option value="">All</option>
              {CHANNELS.map((c) => (
                <option key={c}>{c}</option>
              ))}
            </select>
          )}
        </Field>
      </div>
      <LoadError error={stats.error} />
      {!data && !stats.error && <Loading what="statistics" />}
      {data && (
        <>
          <section className="card" aria-labelledby="totals-title">
            <h2 id="totals-title">Totals</h2>
            <dl className="stats">
              <Stat label="Campaigns" value={formatCount(data.campaigns)} />
              {COUNTERS.map((c) => (
                <Stat key={c} label={c} value={formatCount(data[c] ?? 0)} />
              ))}
              <Stat label="Delivery rate" value={formatPercent(data.deliveryRate)} />
              <Stat label="Credits spent" value={formatCredits(data.creditsSpent)} />
            </dl>
          </section>
          <div className="charts">
            <Chart
              title="By day: delivered and failed"
              x={charts.x}
              series={charts.byDay}
              kind="bars"
            />
            <Chart
              title={`By channel: recipients (${charts.channelNames.join(", ") || "none"})`}
              x={charts.channelX}
              xLabels={charts.channelNames}
              series={charts.byChannel}
              kind="bars"
            />
          </div>
          <table>
            <caption>By channel</caption>
            <thead>
              <tr>
                <th scope="col">Channel</th>
                <th scope="col" className="num">
                  Recipients
                </th>
                <th scope="col" className="num">
                  Delivered
                </th>
                <th scope="col" className="num">
                  Failed
                </th>
                <th scope="col" className="num">
                  Delivery rate
                </th>
                <th scope="col" className="num">
                  Credits spent
                </th>
              </tr>
            </thead>
            <tbody>
              {Object.entries(data.byChannel).map(([name, c]) => (
                <tr key={name}>
                  <td>{name}</td>
                  <td className="num">{formatCount(c.recipients)}</td>
                  <td className="num">{formatCount(c.delivered + c.read)}</td>
                  <td className="num">{formatCount(c.failed)}</td>
                  <td className="num">{formatPercent(c.deliveryRate)}</td>
                  <td className="num">{formatCredits(c.creditsSpent)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </>
  );
}
