import { useState, type FormEvent } from "react";
import { useParams } from "react-router";
import { call, client } from "../api/client";
import { CHANNELS, type Contact } from "../api/types";
import { ErrorText, Field, fieldError, LoadError, Loading, PageHeader } from "../components/ui";
import { formatDateTime } from "../format";
import { useAction, useLoad } from "../hooks";
import { useSession } from "../session";
import { Consent, History } from "./ContactHistory";

export default function ContactView() {
  const { id } = useParams();
  const loaded = useLoad(
    () =>
      call(client.GET("/contacts/{contact_id}", { params: { path: { contact_id: Number(id) } } })),
    `contact-${id}`,
  );
  if (!loaded.data)
    return loaded.error ? <LoadError error={loaded.error} /> : <Loading what="the contact" />;
  return <ContactForm key={loaded.data.id} contact={loaded.data} onSaved={loaded.setData} />;
}

function ContactForm({ contact, onSaved }: { contact: Contact; onSaved: (c: Contact) => void }) {
  const { can } = useSession();
  const [phone, setPhone] = useState(contact.phone);
  const [firstName, setFirstName] = useState(contact.firstName ?? "");
  const [lastName, setLastName] = useState(contact.lastName ?? "");
  const [optOuts, setOptOuts] = useState<string[]>(contact.optOuts);
  const [attributes, setAttributes] = useState(JSON.stringify(contact.attributes ?? {}, null, 2));
  const [attributesError, setAttributesError] = useState<string | undefined>();
  const save = useAction();
  const [saved, setSaved] = useState(false);
  const editable = can("editor");

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setSaved(false);
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(attributes || "{}") as Record<string, unknown>;
      setAttributesError(undefined);
    } catch {
      setAttributesError('Attributes must be a JSON object, such as {"city": "Lyon"}.');
      return;
    }
    const next = await save.run(() =>
      call(
        client.PUT("/contacts/{contact_id}", {
          params: { path: { contact_id: contact.id } },
          body: {
            phone,
            firstName: firstName || null,
            lastName: lastName || null,
            // Parsed from the JSON field; the API validates each value.
            attributes: parsed as Record<string, never>,
            optOuts: optOuts as ("sms" | "rcs" | "whatsapp")[],
          },
        }),
      ),
    );
    if (next) {
      setSaved(true);
      onSaved(next);
    }
  };

  return (
    <>
      <PageHeader
        title={[contact.firstName, contact.lastName].filter(Boolean).join(" ") || contact.phone}
      />
      <p className="muted">
        {contact.country} · created {formatDateTime(contact.createdAt)} · updated{" "}
        {formatDateTime(contact.updatedAt)}
      </p>
      <form className="card narrow-form" onSubmit={submit}>
        <fieldset disabled={!editable}>
          <legend>Contact</legend>
          <Field label="Phone" error={fieldError(save.error, "phone")}>
            {(p) => (
              <input {...p} type="tel" value={phone} onChange={(e) => setPhone(e.target.value)} />
            )}
          </Field>
          <Field label="First name" error={fieldError(save.error, "firstName")}>
            {(p) => (
              <input {...p} value={firstName} onChange={(e) => setFirstName(e.target.value)} />
            )}
          </Field>
          <Field label="Last name" error={fieldError(save.error, "lastName")}>
            {(p) => <input {...p} value={lastName} onChange={(e) => setLastName(e.target.value)} />}
          </Field>
          <fieldset className="list-picker">
            <legend>Opted out of</legend>
            {CHANNELS.map((c) => (
              <label key={c} className="check">
                <input
                  type="checkbox"
                  checked={optOuts.includes(c)}
                  onChange={() =>
                    setOptOuts(
                      optOuts.includes(c) ? optOuts.filter((x) => x !== c) : [...optOuts, c],
                    )
                  }
                />
                {c}
              </label>
            ))}
          </fieldset>
          <Field
            label="Attributes (JSON)"
            error={attributesError ?? fieldError(save.error, "attributes")}
          >
            {(p) => (
              <textarea
                {...p}
                rows={5}
                className="mono"
                value={attributes}
                onChange={(e) => setAttributes(e.target.value)}
              />
            )}
          </Field>
        </fieldset>
        {editable && (
          <div className="actions">
            <button type="submit" className="primary" disabled={save.busy}>
              Save contact
            </button>
            {saved && <span role="status">Saved.</span>}
            <ErrorText error={save.error} />
          </div>
        )}
      </form>
      <Consent contact={contact} />
      <History contactId={contact.id} version={contact.updatedAt} />
    </>
  );
}
