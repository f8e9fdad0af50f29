import { useState, type FormEvent } from "react";
import { Link, useNavigate, useSearchParams } from "react-router";
import { call, client } from "../api/client";
import {
  ErrorText,
  Field,
  fieldError,
  LoadError,
  Loading,
  PageHeader,
  Pager,
} from "../components/ui";
import { formatCount, formatDateTime } from "../format";
import { useAction, useLoad } from "../hooks";
import { useSession } from "../session";

const LIMIT = 50;

export default function Lists() {
  const { can } = useSession();
  const navigate = useNavigate();
  const [params, setParams] = useSearchParams();
  const offset = Number(params.get("offset") ?? 0) || 0;
  const page = useLoad(
    () => call(client.GET("/lists", { params: { query: { limit: LIMIT, offset } } })),
    `${offset}`,
  );
  const [name, setName] = useState("");
  const create = useAction();
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const list = await create.run(() => call(client.POST("/lists", { body: { name } })));
    if (list) navigate(`/lists/${list.id}`);
  };
  return (
    <>
      <PageHeader title="Lists" />
      {can("editor") && (
        <form className="inline card" onSubmit={submit}>
          <Field label="New list name" error={fieldError(create.error, "name")}>
            {(p) => (
              <input {...p} required value={name} onChange={(e) => setName(e.target.value)} />
            )}
          </Field>
          <button type="submit" className="primary" disabled={create.busy}>
            Create list
          </button>
          <ErrorText error={create.error} />
        </form>
      )}
      <LoadError error={page.error} />
      {!page.data && !page.error && <Loading what="lists" />}
      {page.data && (
        <>
          <table>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col" className="num">
                  Contacts
                </th>
                <th scope="col">Created</th>
              </tr>
            </thead>
            <tbody>
              {page.data.items.map((l) => (
                <tr key={l.id}>
                  <td>
                    <Link to={`/lists/${l.id}`}>{l.name}</Link>
                  </td>
                  <td className="num">{formatCount(l.contactCount)}</td>
                  <td>{formatDateTime(l.createdAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {page.data.total === 0 && <p className="muted">No list yet.</p>}
          <Pager
            label="Lists"
            total={page.data.total}
            limit={LIMIT}
            offset={offset}
            onChange={(o) => setParams({ offset: String(o) })}
          />
        </>
      )}
    </>
  );
}
