import { Link, useSearchParams } from "react-router";
import { call, client } from "../api/client";
import { CHANNELS, type CampaignStatusFilter } from "../api/types";
import { Field, LoadError, Loading, PageHeader, Pager, StatusBadge } from "../components/ui";
import { formatCount, formatCredits, formatDateTime } from "../format";
import { useLoad } from "../hooks";
import { useSession } from "../session";

const LIMIT = 50;
const STATUSES = [
  "draft",
  "awaiting_approval",
  "scheduled",
  "sending",
  "paused",
  "completed",
  "cancelled",
];

export default function Campaigns() {
  const { can } = useSession();
  const [params, setParams] = useSearchParams();
  const status = params.get("status") ?? "";
  const channel = params.get("channel") ?? "";
  const offset = Number(params.get("offset") ?? 0) || 0;
  const page = useLoad(
    () =>
      call(
        client.GET("/campaigns", {
          params: {
            query: {
              limit: LIMIT,
              offset,
              ...(status ? { status: status as CampaignStatusFilter } : {}),
              ...(channel ? { channel } : {}),
            },
          },
        }),
      ),
    `${status}-${channel}-${offset}`,
  );
  const set = (key: string, value: string) => {
    const next = new URLSearchParams(params);
    if (value) next.set(key, value);
    else next.delete(key);
    if (key !== "offset") next.delete("offset");
    setParams(next);
  };

  return (
    <>
      <PageHeader title="Campaigns">
        {can("editor") && (
          <Link className="button primary" to="/campaigns/new">
            New campaign
          </Link>
        )}
      </PageHeader>
      <div className="filters">
        <Field label="Status">
          {(props) => (
            <select {...props} value={status} onChange={(e) => set("status", e.target.value)}>
              <option value="">Any</option>
              {STATUSES.map((s) => (
                <option key={s}>{s}</option>
              ))}
            </select>
          )}
        </Field>
        <Field label="Channel">
          {(props) => (
            <select {...props} value={channel} onChange={(e) => set("channel", e.target.value)}>
              <option value="">Any</option>
              {CHANNELS.map((c) => (
                <option key={c}>{c}</option>
              ))}
            </select>
          )}
        </Field>
      </div>
      <LoadError error={page.error} />
      {!page.data && !page.error && <Loading what="campaigns" />}
      {page.data && (
        <>
          <table>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Channel</th>
                <th scope="col">Status</th>
                <th scope="col" className="num">
                  Recipients
                </th>
                <th scope="col" className="num">
                  Spent
                </th>
                <th scope="col">Created</th>
              </tr>
            </thead>
            <tbody>
              {page.data.items.map((c) => (
                <tr key={c.id}>
                  <td>
                    <Link to={`/campaigns/${c.id}`}>{c.name}</Link>
                  </td>
                  <td>{c.channel}</td>
                  <td>
                    <StatusBadge status={c.status} />
                  </td>
                  <td className="num">{formatCount(c.stats.recipients)}</td>
                  <td className="num">{formatCredits(c.cost.spent)}</td>
                  <td>{formatDateTime(c.createdAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {page.data.total === 0 && <p className="muted">No campaign yet.</p>}
          <Pager
            label="Campaigns"
            total={page.data.total}
            limit={LIMIT}
            offset={offset}
            onChange={(o) => set("offset", String(o))}
          />
        </>
      )}
    </>
  );
}
