import { useState } from "react";
import { Link } from "react-router";
import { call, client } from "../api/client";
import { CHANNELS, type Channel } from "../api/types";
import { Field, LoadError, Loading, PageHeader, Pager, StatusBadge } from "../components/ui";
import { formatDateTime } from "../format";
import { useLoad } from "../hooks";
import { useSession } from "../session";

const LIMIT = 50;

export default function Templates() {
  const { can } = useSession();
  const [channel, setChannel] = useState("");
  const [offset, setOffset] = useState(0);
  const page = useLoad(
    () =>
      call(
        client.GET("/templates", {
          params: {
            query: { limit: LIMIT, offset, ...(channel ? { channel: channel as Channel } : {}) },
          },
        }),
      ),
    `${channel}-${offset}`,
  );
  return (
    <>
      <PageHeader title="Templates">
        {can("editor") && (
          <Link className="button primary" to="/templates/new">
            New template
          </Link>
        )}
      </PageHeader>
      <div className="filters">
        <Field label="Channel">
          {(p) => (
            <select
              {...p}
              value={channel}
              onChange={(e) => {
                setChannel(e.target.value);
                setOffset(0);
              }}
            >
              <option value="">Any</option>
              {CHANNELS.map((c) => (
                <option key={c}>{c}</option>
              ))}
            </select>
          )}
        </Field>
      </div>
      <LoadError error={page.error} />
      {!page.data && !page.error && <Loading what="templates" />}
      {page.data && (
        <>
          <table>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Channel</th>
                <th scope="col">Category</th>
                <th scope="col">Status</th>
                <th scope="col">Variables</th>
                <th scope="col">Updated</th>
              </tr>
            </thead>
            <tbody>
              {page.data.items.map((t) => (
                <tr key={t.id}>
                  <td>
                    <Link to={`/templates/${t.id}`}>{t.name}</Link>
                  </td>
                  <td>{t.channel}</td>
                  <td>{t.category ?? ""}</td>
                  <td>
                    <StatusBadge status={t.status} />
                  </td>
                  <td>{(t.variables as string[]).join(", ")}</td>
                  <td>{formatDateTime(t.updatedAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {page.data.total === 0 && <p className="muted">No template yet.</p>}
          <Pager
            label="Templates"
            total={page.data.total}
            limit={LIMIT}
            offset={offset}
            onChange={setOffset}
          />
        </>
      )}
    </>
  );
}
