import { useState, type FormEvent } from "react";
import { call, client } from "../api/client";
import { ROLES, type Role } from "../api/types";
import { ErrorText, Field, fieldError, LoadError, PageHeader, Pager } from "../components/ui";
import { formatCredits, formatDateTime } from "../format";
import { useAction, useLoad } from "../hooks";
import { useSession } from "../session";
import ComplianceSettings from "./ComplianceSettings";

export default function Settings() {
  const { can } = useSession();
  return (
    <>
      <PageHeader title="Settings" />
      <Users />
      {can("owner") && <Keys />}
      <Approval />
      <ComplianceSettings />
      <Ledger />
      {can("manager") && <Audit />}
    </>
  );
}

function Users() {
  const { can, me } = useSession();
  const users = useLoad(
    () => call(client.GET("/users", { params: { query: { limit: 100 } } })),
    "users",
  );
  const [email, setEmail] = useState("");
  const [name, setName] = useState("");
  const [password, setPassword] = useState("");
  const [role, setRole] = useState<Role>("editor");
  const create = useAction();
  const change = useAction();
  const owner = can("owner");
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const done = await create.run(() =>
      call(client.POST("/users", { body: { email, name: name || null, password, role } })),
    );
    if (done) {
      setEmail("");
      setName("");
      setPassword("");
      users.reload();
    }
  };
  const items = users.data ? ("items" in users.data ? users.data.items : users.data) : [];
  return (
    <section className="card" aria-labelledby="users-title">
      <h2 id="users-title">Users and roles</h2>
      <LoadError error={users.error} />
      <table>
        <thead>
          <tr>
            <th scope="col">Email</th>
            <th scope="col">Name</th>
            <th scope="col">Role</th>
            <th scope="col">Last sign-in</th>
            {owner && <th scope="col">Actions</th>}
          </tr>
        </thead>
        <tbody>
          {items.map((u) => (
            <tr key={u.id}>
              <td>{u.email}</td>
              <td>{u.name ?? ""}</td>
              <td>
                {owner ? (
                  <select
                    aria-label={`Role of ${u.email}`}
                    value={u.role}
                    onChange={(e) =>
                      void change
                        .run(() =>
                          call(
                            client.PUT("/users/{user_id}", {
                              params: { path: { user_id: u.id } },
                              body: { role: e.target.value as Role },
                            }),
                          ),
                        )
                        .then(users.reload)
                    }
                  >
                    {ROLES.map((r) => (
                      <option key={r}>{r}</option>
                    ))}
                  </select>
                ) : (
                  u.role
                )}
              </td>
              <td>{formatDateTime(u.lastLoginAt)}</td>
              {owner && (
                <td>
                  {u.id !== me?.user?.id && (
                    <button
                      type="button"
                      className="danger small"
                      onClick={() =>
                        void change
                          .run(() =>
                            call(
                              client.DELETE("/users/{user_id}", {
                                params: { path: { user_id: u.id } },
                              }),
                            ),
                          )
                          .then(users.reload)
                      }
                    >
                      Remove {u.email}
                    </button>
                  )}
                </td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
      <ErrorText error={change.error} />
      {owner && (
        <form className="inline" onSubmit={submit} aria-label="Add a user">
          <Field label="New user email" error={fieldError(create.error, "email")}>
            {(p) => (
              <input
                {...p}
                type="email"
                required
                value={email}
                onChange={(e) => setEmail(e.target.value)}
              />
            )}
          </Field>
          <Field label="New user name" error={fieldError(create.error, "name")}>
            {(p) => <input {...p} value={name} onChange={(e) => setName(e.target.value)} />}
          </Field>
          <Field
            label="New user password"
            error={fieldError(create.error, "password")}
            hint="At least 10 characters."
          >
            {(p) => (
              <input
                {...p}
                type="password"
                autoComplete="new-password"
                required
                value={password}
                onChange={(e) => setPassword(e.target.value)}
              />
            )}
          </Field>
          <Field label="New user role" error={fieldError(create.error, "role")}>
            {(p) => (
              <select {...p} value={role} onChange={(e) => setRole(e.target.value as Role)}>
                {ROLES.map((r) => (
                  <option key={r}>{r}</option>
                ))}
              </select>
            )}
          </Field>
          <button type="submit" className="primary" disabled={create.busy}>
            Add user
          </button>
          <ErrorText error={create.error} />
        </form>
      )}
    </section>
  );
}

function Keys() {
  const keys = useLoad(() => call(client.GET("/account/keys")), "keys");
  const [name, setName] = useState("");
  const [role, setRole] = useState<Role>("manager");
  const [shown, setShown] = useState<string | null>(null);
  const create = useAction();
  const revoke = useAction();
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const created = await create.run(() =>
      call(client.POST("/account/keys", { body: { name, role } })),
    );
    if (created) {
      setShown(created.key);
      setName("");
      keys.reload();
    }
  };
  const items = keys.data ? ("items" in keys.data ? keys.data.items : keys.data) : [];
  return (
    <section className="card" aria-labelledby="keys-title">
      <h2 id="keys-title">API keys</h2>
      <LoadError error={keys.error} />
      <table>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Prefix</th>
            <th scope="col">Role</th>
            <th scope="col">Created</th>
            <th scope="col">Actions</th>
          </tr>
        </thead>
        <tbody>
          {items.map((k) => (
            <tr key={k.id}>
              <td>{k.name}</td>
              <td>
                <code>{k.prefix}</code>
              </td>
              <td>{k.role}</td>
              <td>{formatDateTime(k.createdAt)}</td>
              <td>
                <button
                  type="button"
                  className="danger small"
                  onClick={() =>
                    void revoke
                      .run(() =>
                        call(
                          client.DELETE("/account/keys/{key_id}", {
                            params: { path: { key_id: k.id } },
                          }),
                        ),
                      )
                      .then(keys.reload)
                  }
                >
                  Revoke {k.name}
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <ErrorText error={revoke.error} />
      <form className="inline" onSubmit={submit} aria-label="Create an API key">
        <Field label="Key name" error={fieldError(create.error, "name")}>
          {(p) => <input {...p} required value={name} onChange={(e) => setName(e.target.value)} />}
        </Field>
        <Field label="Key role" error={fieldError(create.error, "role")}>
          {(p) => (
            <select {...p} value={role} onChange={(e) => setRole(e.target.value as Role)}>
              {ROLES.map((r) => (
                <option key={r}>{r}</option>
              ))}
            </select>
          )}
        </Field>
        <button type="submit" className="primary" disabled={create.busy}>
          Create key
        </button>
        <ErrorText error={create.error} />
      </form>
      {shown && (
        <p className="warning" role="status">
          The new key, shown once: <code className="secret">{shown}</code>
        </p>
      )}
    </section>
  );
}

function Approval() {
  const { can } = useSession();
  const settings = useLoad(() => call(client.GET("/account/settings")), "settings");
  const save = useAction();
  // The box shows the choice at once; it returns to the stored value if the API refuses it.
  const [pending, setPending] = useState<boolean | null>(null);
  const toggle = async (approvalRequired: boolean) => {
    setPending(approvalRequired);
    const next = await save.run(() =>
      call(client.PUT("/account/settings", { body: { approvalRequired } })),
    );
    if (next) settings.setData(next);
    setPending(null);
  };
  return (
    <section className="card" aria-labelledby="approval-title">
      <h2 id="approval-title">Approval</h2>
      <LoadError error={settings.error} />
      {settings.data && (
        <>
          <label className="check">
            <input
              type="checkbox"
              checked={pending ?? settings.data.approvalRequired}
              disabled={!can("owner") || save.busy}
              onChange={(e) => void toggle(e.target.checked)}
            />
            Campaigns need another manager&apos;s approval before they are sent
          </label>
          <p className="muted">Time zone: {settings.data.timezone}</p>
          <ErrorText error={save.error} />
        </>
      )}
    </section>
  );
}

function Ledger() {
  const [offset, setOffset] = useState(0);
  const ledger = useLoad(
    () => call(client.GET("/account/ledger", { params: { query: { limit: 20, offset } } })),
    `ledger-${offset}`,
  );
  return (
    <section className="card" aria-labelledby="ledger-title">
      <h2 id="ledger-title">Ledger</h2>
      <LoadError error={ledger.error} />
      {ledger.data && (
        <>
          <table>
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Kind</th>
                <th scope="col" className="num">
                  Amount
                </th>
                <th scope="col" className="num">
                  Reserved
                </th>
                <th scope="col">Campaign</th>
                <th scope="col">Note</th>
              </tr>
            </thead>
            <tbody>
              {ledger.data.items.map((row) => (
                <tr key={row.id}>
                  <td>{formatDateTime(row.createdAt)}</td>
                  <td>{row.kind}</td>
                  <td className="num">{formatCredits(row.amount)}</td>
                  <td className="num">{formatCredits(row.reserved)}</td>
                  <td>{row.campaignId ?? ""}</td>
                  <td>{row.note ?? ""}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <Pager
            label="Ledger"
            total={ledger.data.total}
            limit={20}
            offset={offset}
            onChange={setOffset}
          />
        </>
      )}
    </section>
  );
}

function Audit() {
  const [offset, setOffset] = useState(0);
  const [action, setAction] = useState("");
  const audit = useLoad(
    () =>
      call(
        client.GET("/account/audit", {
          params: { query: { limit: 20, offset, ...(action ? { action } : {}) } },
        }),
      ),
    `audit-${offset}-${action}`,
  );
  return (
    <section className="card" aria-labelledby="audit-title">
      <h2 id="audit-title">Audit trail</h2>
      <Field label="Action" hint="For example campaign.confirm or user.create.">
        {(p) => (
          <input
            {...p}
            value={action}
            onChange={(e) => {
              setAction(e.target.value.trim());
              setOffset(0);
            }}
          />
        )}
      </Field>
      <LoadError error={audit.error} />
      {audit.data && (
        <>
          <table>
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Who</th>
                <th scope="col">Action</th>
                <th scope="col">Target</th>
              </tr>
            </thead>
            <tbody>
              {audit.data.items.map((row) => (
                <tr key={row.id}>
                  <td>{formatDateTime(row.at)}</td>
                  <td>
                    {row.actor.name ?? row.actor.type}{" "}
                    <span className="muted">({row.actor.type})</span>
                  </td>
                  <td>
                    <code>{row.action}</code>
                  </td>
                  <td>{row.target ? `${row.target.type} ${row.target.id}` : ""}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <Pager
            label="Audit trail"
            total={audit.data.total}
            limit={20}
            offset={offset}
            onChange={setOffset}
          />
        </>
      )}
    </section>
  );
}
