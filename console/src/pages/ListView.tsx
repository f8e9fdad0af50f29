import { useState, type FormEvent } from "react";
import { Link, useParams } from "react-router";
import { call, client } from "../api/client";
import type { Import } from "../api/types";
import {
  ErrorText,
  Field,
  LoadError,
  Loading,
  PageHeader,
  Pager,
  ProgressBar,
} from "../components/ui";
import { useEvents, useInterval } from "../events";
import { formatCount } from "../format";
import { useAction, useLoad } from "../hooks";
import { useSession } from "../session";

const LIMIT = 50;

export default function ListView() {
  const { id } = useParams();
  const listId = Number(id);
  const { can } = useSession();
  const list = useLoad(
    () => call(client.GET("/lists/{list_id}", { params: { path: { list_id: listId } } })),
    `list-${id}`,
  );
  const [offset, setOffset] = useState(0);
  const [version, setVersion] = useState(0);
  const members = useLoad(
    () =>
      call(
        client.GET("/lists/{list_id}/contacts", {
          params: { path: { list_id: listId }, query: { limit: LIMIT, offset } },
        }),
      ),
    `members-${id}-${offset}-${version}`,
  );
  const [file, setFile] = useState<File | null>(null);
  const [current, setCurrent] = useState<Import | null>(null);
  const upload = useAction();

  const running = current?.status === "running";
  const onImport = (next: Import) => {
    if (next.id !== current?.id || current.status !== "running") return;
    setCurrent(next);
    if (next.status !== "running") {
      setVersion((v) => v + 1);
      list.reload();
    }
  };
  // The account stream reports the import's progress as it goes; a slow poll covers an
  // import that finished before the stream was open (a new stream replays nothing).
  useEvents<Import>(running ? "/events" : null, "import.updated", onImport);
  useInterval(running, 1_000, () => {
    if (!current) return;
    void call(
      client.GET("/imports/{import_id}", { params: { path: { import_id: current.id } } }),
    ).then(onImport, () => undefined);
  });

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (!file) return;
    await upload.run(async () => {
      const started = await call(
        client.POST("/lists/{list_id}/imports", {
          params: { path: { list_id: listId } },
          // openapi-fetch sends FormData as is; the schema names the one field `file`.
          body: { file: file as unknown as string, defaultCountry: "" },
          bodySerializer: (body) => {
            const form = new FormData();
            form.append("file", body.file as unknown as Blob);
            return form;
          },
        }),
      );
      const first = await call(
        client.GET("/imports/{import_id}", { params: { path: { import_id: started.id } } }),
      );
      setCurrent(first);
      if (first.status !== "running") {
        setVersion((v) => v + 1);
        list.reload();
      }
    });
  };

  if (!list.data)
    return list.error ? <LoadError error={list.error} /> : <Loading what="the list" />;
  const done = current ? current.imported + current.updated + current.invalid : 0;
  return (
    <>
      <PageHeader title={list.data.name} />
      <p className="muted">
        {formatCount(list.data.contactCount)} contacts
        {list.data.description ? ` · ${list.data.description}` : ""}
      </p>
      {can("editor") && (
        <section className="card" aria-labelledby="import-title">
          <h2 id="import-title">Import contacts from CSV</h2>
          <p className="muted">
            A header row with a <code>phone</code> column; <code>firstName</code>,{" "}
            <code>lastName</code> and any other column become the contact&apos;s fields and
            attributes.
          </p>
          <form className="inline" onSubmit={submit}>
            <Field label="CSV file">
              {(p) => (
                <input
                  {...p}
                  type="file"
                  accept=".csv,text/csv"
                  onChange={(e) => setFile(e.target.files?.[0] ?? null)}
                />
              )}
            </Field>
            <button type="submit" className="primary" disabled={!file || upload.busy}>
              Import
            </button>
          </form>
          <ErrorText error={upload.error} />
          {current && (
            <div className="import" aria-live="polite">
              <ProgressBar
                value={current.status === "running" ? (current.rows ? done / current.rows : 0) : 1}
                label="Import progress"
              />
              <p role="status" data-testid="import-status">
                Import {current.status}: {formatCount(current.rows)} rows,{" "}
                {formatCount(current.imported)} new, {formatCount(current.updated)} updated,{" "}
                {formatCount(current.invalid)} rejected.
                {current.failureReason ? ` ${current.failureReason}` : ""}
              </p>
              {current.errors.length > 0 && (
                <table>
                  <caption>Rejected rows</caption>
                  <thead>
                    <tr>
                      <th scope="col" className="num">
                        Row
                      </th>
                      <th scope="col">Phone</th>
                      <th scope="col">Reason</th>
                    </tr>
                  </thead>
                  <tbody>
                    {current.errors.map((e) => (
                      <tr key={e.row}>
                        <td className="num">{e.row}</td>
                        <td>{e.phone}</td>
                        <td>{e.reason}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              )}
            </div>
          )}
        </section>
      )}
      <section className="card" aria-labelledby="members-title">
        <h2 id="members-title">Members</h2>
        <LoadError error={members.error} />
        {members.data && (
          <>
            <table>
              <thead>
                <tr>
                  <th scope="col">Phone</th>
                  <th scope="col">Name</th>
                  <th scope="col">Country</th>
                  <th scope="col">Opted out of</th>
                </tr>
              </thead>
              <tbody>
                {members.data.items.map((c) => (
                  <tr key={c.id}>
                    <td>
                      <Link to={`/contacts/${c.id}`}>{c.phone}</Link>
                    </td>
                    <td>{[c.firstName, c.lastName].filter(Boolean).join(" ")}</td>
                    <td>{c.country}</td>
                    <td>{c.optOuts.join(", ")}</td>
                  </tr>
                ))}
              </tbody>
            </table>
            {members.data.total === 0 && <p className="muted">No member yet.</p>}
            <Pager
              label="Members"
              total={members.data.total}
              limit={LIMIT}
              offset={offset}
              onChange={setOffset}
            />
          </>
        )}
      </section>
    </>
  );
}
