// Changing a hook: its URL (the server's address rules apply, as on creation), its events,
// its description and whether it is enabled. The signing secret does not change.
import { useState, type FormEvent } from "react";
import { call, client } from "../api/client";
import { HOOK_EVENTS, type Hook, type HookEvent } from "../api/types";
import { ErrorText, errorsUnder, Field, fieldError } from "../components/ui";
import { useAction } from "../hooks";

/** The event types a hook receives, as checkboxes; the API's refusal under them. */
export function EventsPicker({
  legend,
  events,
  onChange,
  error,
}: {
  legend: string;
  events: HookEvent[];
  onChange: (events: HookEvent[]) => void;
  error: string | undefined;
}) {
  return (
    <fieldset className="list-picker" aria-invalid={error ? true : undefined}>
      <legend>{legend}</legend>
      {HOOK_EVENTS.map((name) => (
        <label key={name} className="check">
          <input
            type="checkbox"
            checked={events.includes(name)}
            onChange={() =>
              onChange(events.includes(name) ? events.filter((e) => e !== name) : [...events, name])
            }
          />
          {name === "*" ? "* (all events)" : name}
        </label>
      ))}
      {error && (
        <p className="field-error" role="alert">
          {error}
        </p>
      )}
    </fieldset>
  );
}

export function EditHook({
  hook,
  onSaved,
  onClose,
}: {
  hook: Hook;
  onSaved: (hook: Hook) => void;
  onClose: () => void;
}) {
  const [url, setUrl] = useState(hook.url);
  const [events, setEvents] = useState<HookEvent[]>(hook.events as HookEvent[]);
  const [description, setDescription] = useState(hook.description ?? "");
  const [enabled, setEnabled] = useState(hook.enabled);
  const [saved, setSaved] = useState(false);
  const save = useAction();
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setSaved(false);
    const updated = await save.run(() =>
      call(
        client.PUT("/hooks/{hook_id}", {
          params: { path: { hook_id: hook.id } },
          body: { url, events, description: description || null, enabled },
        }),
      ),
    );
    if (updated) {
      setSaved(true);
      onSaved(updated);
    }
  };
  return (
    <section className="card" aria-labelledby="edit-hook-title">
      <h2 id="edit-hook-title">Edit hook {hook.id}</h2>
      <form onSubmit={submit} aria-label={`Edit hook ${hook.id}`}>
        <Field
          label="URL of the hook"
          hint="https://, or http:// to a host the server allows"
          error={fieldError(save.error, "url")}
        >
          {(p) => (
            <input
              {...p}
              type="url"
              required
              size={50}
              // Opened by its row's button: the keyboard lands in the form it opened.
              autoFocus
              value={url}
              onChange={(e) => setUrl(e.target.value)}
            />
          )}
        </Field>
        <EventsPicker
          legend="Events of the hook"
          events={events}
          onChange={setEvents}
          error={errorsUnder(save.error, "events")}
        />
        <Field label="Description of the hook" error={fieldError(save.error, "description")}>
          {(p) => (
            <input {...p} value={description} onChange={(e) => setDescription(e.target.value)} />
          )}
        </Field>
        <label className="check">
          <input type="checkbox" checked={enabled} onChange={(e) => setEnabled(e.target.checked)} />
          Enabled (a hook is disabled after 3 days of failed deliveries)
        </label>
        <div className="actions">
          <button type="submit" className="primary" disabled={save.busy}>
            Save hook
          </button>
          <button type="button" onClick={onClose}>
            Close
          </button>
          <ErrorText error={save.error} />
          {saved && <p role="status">Saved.</p>}
        </div>
      </form>
    </section>
  );
}
