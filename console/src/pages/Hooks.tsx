// Event hooks: the customer's webhooks. Managers and owners list, create (the signing
// secret is shown once), edit, enable or disable and delete them, and read each hook's
// delivery log, retrying a failed delivery.
import { useState, type FormEvent } from "react";
import { call, client } from "../api/client";
import type { Hook, HookEvent } from "../api/types";
import {
  ErrorText,
  errorsUnder,
  Field,
  fieldError,
  LoadError,
  PageHeader,
  Pager,
  StatusBadge,
} from "../components/ui";
import { formatCount, formatDateTime } from "../format";
import { useAction, useLoad } from "../hooks";
import { useSession } from "../session";
import { EditHook, EventsPicker } from "./HookEdit";

const LIMIT = 20;

export default function Hooks() {
  const { can } = useSession();
  const [offset, setOffset] = useState(0);
  const [shown, setShown] = useState<Hook | null>(null);
  const [editing, setEditing] = useState<Hook | null>(null);
  const hooks = useLoad(
    () => call(client.GET("/hooks", { params: { query: { limit: LIMIT, offset } } })),
    `hooks-${offset}`,
  );
  const change = useAction();
  const manager = can("manager");
  const update = (hook: Hook, enabled: boolean) =>
    void change
      .run(() =>
        call(
          client.PUT("/hooks/{hook_id}", {
            params: { path: { hook_id: hook.id } },
            body: { enabled },
          }),
        ),
      )
      .then(hooks.reload);
  const remove = (hook: Hook) =>
    void change
      .run(async () => {
        await call(client.DELETE("/hooks/{hook_id}", { params: { path: { hook_id: hook.id } } }));
        if (shown?.id === hook.id) setShown(null);
        if (editing?.id === hook.id) setEditing(null);
      })
      .then(hooks.reload);

  return (
    <>
      <PageHeader title="Hooks" />
      <p className="muted">
        Clarion posts the events a hook asks for to its URL, signed with its secret (Standard
        Webhooks), retrying for 24 hours.
      </p>
      <section className="card" aria-labelledby="hooks-title">
        <h2 id="hooks-title">Hooks</h2>
        <LoadError error={hooks.error} />
        {hooks.data && (
          <>
            <table aria-labelledby="hooks-title">
              <thead>
                <tr>
                  <th scope="col">URL</th>
                  <th scope="col">Events</th>
                  <th scope="col">Description</th>
                  <th scope="col">State</th>
                  <th scope="col">Created</th>
                  <th scope="col">Actions</th>
                </tr>
              </thead>
              <tbody>
                {hooks.data.items.map((hook) => (
                  <tr key={hook.id}>
                    <td className="mono">{hook.url}</td>
                    <td>{hook.events.join(", ")}</td>
                    <td>{hook.description ?? ""}</td>
                    <td>
                      <StatusBadge status={hook.enabled ? "enabled" : "disabled"} />
                    </td>
                    <td>{formatDateTime(hook.createdAt)}</td>
                    <td className="row-actions">
                      <button type="button" className="small" onClick={() => setShown(hook)}>
                        Deliveries of hook {hook.id}
                      </button>
                      {manager && (
                        <>
                          <button type="button" className="small" onClick={() => setEditing(hook)}>
                            Edit hook {hook.id}
                          </button>
                          <button
                            type="button"
                            className="small"
                            disabled={change.busy}
                            onClick={() => update(hook, !hook.enabled)}
                          >
                            {hook.enabled ? "Disable" : "Enable"} hook {hook.id}
                          </button>
                          <button
                            type="button"
                            className="danger small"
                            disabled={change.busy}
                            onClick={() => remove(hook)}
                          >
                            Delete hook {hook.id}
                          </button>
                        </>
                      )}
                    </td>
                  </tr>
                ))}
                {hooks.data.items.length === 0 && (
                  <tr>
                    <td colSpan={6} className="muted">
                      No hooks yet.
                    </td>
                  </tr>
                )}
              </tbody>
            </table>
            <Pager
              label="Hooks"
              total={hooks.data.total}
              limit={LIMIT}
              offset={offset}
              onChange={setOffset}
            />
          </>
        )}
        <ErrorText error={change.error} />
      </section>
      {manager && editing && (
        <EditHook
          key={editing.id}
          hook={editing}
          onSaved={(hook) => {
            if (shown?.id === hook.id) setShown(hook);
            hooks.reload();
          }}
          onClose={() => setEditing(null)}
        />
      )}
      {manager && <CreateHook onCreated={hooks.reload} />}
      {shown && <Deliveries key={shown.id} hook={shown} />}
    </>
  );
}

function CreateHook({ onCreated }: { onCreated: () => void }) {
  const [url, setUrl] = useState("");
  const [events, setEvents] = useState<HookEvent[]>([]);
  const [description, setDescription] = useState("");
  const [secret, setSecret] = useState<string | null>(null);
  const create = useAction();
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setSecret(null);
    const created = await create.run(() =>
      call(client.POST("/hooks", { body: { url, events, description: description || null } })),
    );
    if (created) {
      setSecret(created.secret);
      setUrl("");
      setEvents([]);
      setDescription("");
      onCreated();
    }
  };
  const eventsError = errorsUnder(create.error, "events");
  return (
    <section className="card" aria-labelledby="new-hook-title">
      <h2 id="new-hook-title">New hook</h2>
      <form onSubmit={submit} aria-label="Create a hook">
        <Field
          label="Hook URL"
          hint="https://, or http:// to a host the server allows"
          error={fieldError(create.error, "url")}
        >
          {(p) => (
            <input
              {...p}
              type="url"
              required
              size={50}
              value={url}
              onChange={(e) => setUrl(e.target.value)}
            />
          )}
        </Field>
        <EventsPicker legend="Events" events={events} onChange={setEvents} error={eventsError} />
        <Field label="Hook description" error={fieldError(create.error, "description")}>
          {(p) => (
            <input {...p} value={description} onChange={(e) => setDescription(e.target.value)} />
          )}
        </Field>
        <div className="actions">
          <button type="submit" className="primary" disabled={create.busy}>
            Create hook
          </button>
          <ErrorText error={create.error} />
        </div>
      </form>
      {secret && (
        <p className="warning" role="status">
          The hook&apos;s signing secret, shown once: <code className="secret">{secret}</code>
        </p>
      )}
    </section>
  );
}

function Deliveries({ hook }: { hook: Hook }) {
  const { can } = useSession();
  const [offset, setOffset] = useState(0);
  const [status, setStatus] = useState<"" | "pending" | "succeeded" | "failed">("");
  const deliveries = useLoad(
    () =>
      call(
        client.GET("/hooks/{hook_id}/deliveries", {
          params: {
            path: { hook_id: hook.id },
            query: { limit: LIMIT, offset, ...(status ? { status } : {}) },
          },
        }),
      ),
    `deliveries-${hook.id}-${offset}-${status}`,
  );
  const retry = useAction();
  return (
    <section className="card" aria-labelledby="deliveries-title">
      <h2 id="deliveries-title">Deliveries of hook {hook.id}</h2>
      <p className="muted mono">{hook.url}</p>
      <div className="inline">
        <Field label="Delivery status">
          {(p) => (
            <select
              {...p}
              value={status}
              onChange={(e) => {
                setStatus(e.target.value as typeof status);
                setOffset(0);
              }}
            >
              <option value="">all</option>
              <option>pending</option>
              <option>succeeded</option>
              <option>failed</option>
            </select>
          )}
        </Field>
        <button type="button" onClick={deliveries.reload}>
          Refresh deliveries
        </button>
      </div>
      <LoadError error={deliveries.error} />
      {deliveries.data && (
        <>
          <table aria-labelledby="deliveries-title">
            <thead>
              <tr>
                <th scope="col">Created</th>
                <th scope="col">Status</th>
                <th scope="col" className="num">
                  Events
                </th>
                <th scope="col" className="num">
                  Attempts
                </th>
                <th scope="col">Last answer</th>
                <th scope="col">Next attempt</th>
                {can("manager") && <th scope="col">Actions</th>}
              </tr>
            </thead>
            <tbody>
              {deliveries.data.items.map((d) => (
                <tr key={d.id}>
                  <td>{formatDateTime(d.createdAt)}</td>
                  <td>
                    <StatusBadge status={d.status} />
                  </td>
                  <td className="num">{formatCount(d.events)}</td>
                  <td className="num">{formatCount(d.attempts)}</td>
                  <td>
                    {[d.lastStatusCode !== null ? `HTTP ${d.lastStatusCode}` : null, d.lastError]
                      .filter(Boolean)
                      .join(": ") || "—"}
                  </td>
                  <td>{formatDateTime(d.nextAttemptAt)}</td>
                  {can("manager") && (
                    <td>
                      {d.status === "failed" && (
                        <button
                          type="button"
                          className="small"
                          disabled={retry.busy}
                          onClick={() =>
                            void retry
                              .run(() =>
                                call(
                                  client.POST("/hooks/{hook_id}/deliveries/{delivery_id}/retry", {
                                    params: { path: { hook_id: hook.id, delivery_id: d.id } },
                                  }),
                                ),
                              )
                              .then(deliveries.reload)
                          }
                        >
                          Retry delivery {d.id}
                        </button>
                      )}
                    </td>
                  )}
                </tr>
              ))}
              {deliveries.data.items.length === 0 && (
                <tr>
                  <td colSpan={7} className="muted">
                    No deliveries.
                  </td>
                </tr>
              )}
            </tbody>
          </table>
          <Pager
            label="Deliveries"
            total={deliveries.data.total}
            limit={LIMIT}
            offset={offset}
            onChange={setOffset}
          />
          <ErrorText error={retry.error} />
        </>
      )}
    </section>
  );
}
