import { useState } from "react";
import { Link, useSearchParams } from "react-router";
import { call, client } from "../api/client";
import { Field, LoadError, Loading, PageHeader, Pager } from "../components/ui";
import { formatDateTime } from "../format";
import { useLoad } from "../hooks";

const LIMIT = 50;

export default function Contacts() {
  const [params, setParams] = useSearchParams();
  const search = params.get("search") ?? "";
  const offset = Number(params.get("offset") ?? 0) || 0;
  const [typed, setTyped] = useState(search);
  const page = useLoad(
    () =>
      call(
        client.GET("/contacts", {
          params: { query: { limit: LIMIT, offset, ...(search ? { search } : {}) } },
        }),
      ),
    `${search}-${offset}`,
  );
  return (
    <>
      <PageHeader title="Contacts" />
      <form
        role="search"
        className="inline"
        onSubmit={(e) => {
          e.preventDefault();
          setParams(typed ? { search: typed } : {});
        }}
      >
        <Field label="Search by phone or name">
          {(p) => (
            <input {...p} type="search" value={typed} onChange={(e) => setTyped(e.target.value)} />
          )}
        </Field>
        <button type="submit">Search</button>
      </form>
      <LoadError error={page.error} />
      {!page.data && !page.error && <Loading what="contacts" />}
      {page.data && (
        <>
          <table>
            <thead>
              <tr>
                <th scope="col">Phone</th>
                <th scope="col">Name</th>
                <th scope="col">Country</th>
                <th scope="col">Opted out of</th>
                <th scope="col">Updated</th>
              </tr>
            </thead>
            <tbody>
              {page.data.items.map((c) => (
                <tr key={c.id}>
                  <td>
                    <Link to={`/contacts/${c.id}`}>{c.phone}</Link>
                  </td>
                  <td>{[c.firstName, c.lastName].filter(Boolean).join(" ")}</td>
                  <td>{c.country}</td>
                  <td>{c.optOuts.join(", ")}</td>
                  <td>{formatDateTime(c.updatedAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {page.data.total === 0 && <p className="muted">No contact matches.</p>}
          <Pager
            label="Contacts"
            total={page.data.total}
            limit={LIMIT}
            offset={offset}
            onChange={(o) => setParams({ ...(search ? { search } : {}), offset: String(o) })}
          />
        </>
      )}
    </>
  );
}
