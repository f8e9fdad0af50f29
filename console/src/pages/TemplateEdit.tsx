import { useState, type FormEvent } from "react";
import { useNavigate, useParams } from "react-router";
import { call, client } from "../api/client";
import { CHANNELS, type Channel, type Template } from "../api/types";
import {
  ErrorText,
  Field,
  fieldError,
  LoadError,
  Loading,
  PageHeader,
  StatusBadge,
} from "../components/ui";
import { useAction, useLoad } from "../hooks";
import { variablesOf } from "../message";
import { useSession } from "../session";

const CATEGORIES = ["marketing", "utility", "authentication"];

export default function TemplateEditPage() {
  const { id } = useParams();
  const loaded = useLoad(
    () =>
      id
        ? call(
            client.GET("/templates/{template_id}", {
              params: { path: { template_id: Number(id) } },
            }),
          )
        : Promise.resolve(null),
    `template-${id ?? "new"}`,
  );
  if (id && !loaded.data)
    return loaded.error ? <LoadError error={loaded.error} /> : <Loading what="the template" />;
  return <TemplateEdit key={id ?? "new"} template={loaded.data} />;
}

function TemplateEdit({ template }: { template: Template | null }) {
  const { can } = useSession();
  const navigate = useNavigate();
  const [name, setName] = useState(template?.name ?? "");
  const [channel, setChannel] = useState(template?.channel ?? "sms");
  const [language, setLanguage] = useState(template?.language ?? "en");
  const [category, setCategory] = useState(template?.category ?? "marketing");
  const [body, setBody] = useState(template?.body ?? "");
  const save = useAction();
  const remove = useAction();
  const editable = can("editor");
  const variables = variablesOf(body);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const common = { name, language, body, category: channel === "whatsapp" ? category : null };
    const saved = await save.run(() =>
      template
        ? call(
            client.PUT("/templates/{template_id}", {
              params: { path: { template_id: template.id } },
              body: common,
            }),
          )
        : call(client.POST("/templates", { body: { ...common, channel: channel as Channel } })),
    );
    if (saved) navigate("/templates");
  };

  return (
    <>
      <PageHeader title={template ? template.name : "New template"}>
        {template && <StatusBadge status={template.status} />}
      </PageHeader>
      <form className="card narrow-form" onSubmit={submit}>
        <fieldset disabled={!editable}>
          <legend>Template</legend>
          <Field label="Name" error={fieldError(save.error, "name")}>
            {(p) => (
              <input {...p} required value={name} onChange={(e) => setName(e.target.value)} />
            )}
          </Field>
          <Field label="Channel" error={fieldError(save.error, "channel")}>
            {(p) => (
              <select
                {...p}
                value={channel}
                disabled={!!template || !editable}
                onChange={(e) => setChannel(e.target.value)}
              >
                {CHANNELS.map((c) => (
                  <option key={c}>{c}</option>
                ))}
              </select>
            )}
          </Field>
          <Field label="Language" error={fieldError(save.error, "language")}>
            {(p) => <input {...p} value={language} onChange={(e) => setLanguage(e.target.value)} />}
          </Field>
          {channel === "whatsapp" && (
            <Field label="Category" error={fieldError(save.error, "category")}>
              {(p) => (
                <select {...p} value={category} onChange={(e) => setCategory(e.target.value)}>
                  {CATEGORIES.map((c) => (
                    <option key={c}>{c}</option>
                  ))}
                </select>
              )}
            </Field>
          )}
          {template && channel === "whatsapp" && (
            <p>
              WhatsApp status: <StatusBadge status={template.status} />{" "}
              <span className="muted">
                (kept in step with the provider; only approved templates can be sent)
              </span>
            </p>
          )}
          <Field
            label="Body"
            error={fieldError(save.error, "body")}
            hint="Variables: {{firstName}}, {{lastName}}, {{phone}}, {{attributes.NAME}} or any name given at send time."
          >
            {(p) => (
              <textarea {...p} rows={6} value={body} onChange={(e) => setBody(e.target.value)} />
            )}
          </Field>
          <p aria-live="polite">
            Variables in this template:{" "}
            {variables.length ? (
              <code>{variables.map((v) => `{{${v}}}`).join(", ")}</code>
            ) : (
              <span className="muted">none</span>
            )}
          </p>
        </fieldset>
        {editable && (
          <div className="actions">
            <button type="submit" className="primary" disabled={save.busy}>
              Save template
            </button>
            <ErrorText error={save.error} />
            {template && (
              <button
                type="button"
                className="danger"
                disabled={remove.busy}
                onClick={() =>
                  void remove
                    .run(() =>
                      call(
                        client.DELETE("/templates/{template_id}", {
                          params: { path: { template_id: template.id } },
                        }),
                      ),
                    )
                    .then(() => !remove.error && navigate("/templates"))
                }
              >
                Delete template
              </button>
            )}
            <ErrorText error={remove.error} />
          </div>
        )}
      </form>
    </>
  );
}
