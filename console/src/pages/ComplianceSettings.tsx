// Settings › Compliance: sending hours by country and region, the frequency cap, consent,
// inbound keywords and their replies. Everyone reads them; managers change them.
import { useState, type FormEvent } from "react";
import { call, client } from "../api/client";
import type { Compliance } from "../api/types";
import { ErrorText, errorsUnder, Field, LoadError } from "../components/ui";
import {
  DAYS,
  documentFromForm,
  formFromDocument,
  newRow,
  type ComplianceForm,
  type HoursRowForm,
} from "../compliance";
import { useAction, useLoad } from "../hooks";
import { useSession } from "../session";

export default function ComplianceSettings() {
  const loaded = useLoad(() => call(client.GET("/account/compliance")), "compliance");
  return (
    <section className="card" aria-labelledby="compliance-title">
      <h2 id="compliance-title">Compliance</h2>
      <LoadError error={loaded.error} />
      {loaded.data && <ComplianceEditor initial={loaded.data} onSaved={loaded.setData} />}
    </section>
  );
}

function ComplianceEditor({
  initial,
  onSaved,
}: {
  initial: Compliance;
  onSaved: (doc: Compliance) => void;
}) {
  const { can } = useSession();
  const manager = can("manager");
  const [form, setForm] = useState<ComplianceForm>(() => formFromDocument(initial));
  const [saved, setSaved] = useState(false);
  const save = useAction();
  const set = (patch: Partial<ComplianceForm>) => {
    setSaved(false);
    setForm((f) => ({ ...f, ...patch }));
  };
  const setRow = (index: number, patch: Partial<HoursRowForm>) =>
    set({ rows: form.rows.map((row, i) => (i === index ? { ...row, ...patch } : row)) });
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const next = await save.run(() =>
      call(client.PUT("/account/compliance", { body: documentFromForm(form) })),
    );
    if (next) {
      setForm(formFromDocument(next));
      onSaved(next);
      setSaved(true);
    }
  };
  const err = (field: string) => errorsUnder(save.error, field);

  return (
    <form className="compliance" onSubmit={submit} aria-label="Compliance settings">
      <fieldset disabled={!manager || save.busy}>
        <legend>Sending hours (recipient&apos;s local time, marketing campaigns)</legend>
        {form.rows.length === 0 && <p className="muted">No rows: sending at any time.</p>}
        {form.rows.map((row, i) => {
          const n = i + 1;
          const at = `sendingHours[${i}]`;
          return (
            <fieldset key={i} className="hours-row">
              <legend>Row {n}</legend>
              <div className="inline">
                <Field
                  label={`Country (row ${n})`}
                  hint='ISO code, or "*"'
                  error={err(`${at}.country`)}
                >
                  {(p) => (
                    <input
                      {...p}
                      required
                      size={4}
                      value={row.country}
                      onChange={(e) => setRow(i, { country: e.target.value })}
                    />
                  )}
                </Field>
                <Field label={`Region (row ${n})`} hint="e.g. US-FL" error={err(`${at}.region`)}>
                  {(p) => (
                    <input
                      {...p}
                      size={7}
                      value={row.region}
                      onChange={(e) => setRow(i, { region: e.target.value })}
                    />
                  )}
                </Field>
                <Field label={`Start (row ${n})`} error={err(`${at}.start`)}>
                  {(p) => (
                    <input
                      {...p}
                      required
                      pattern="[0-9]{2}:[0-9]{2}"
                      size={5}
                      value={row.start}
                      onChange={(e) => setRow(i, { start: e.target.value })}
                    />
                  )}
                </Field>
                <Field
                  label={`End (row ${n})`}
                  hint="excluded; 24:00 ends the day"
                  error={err(`${at}.end`)}
                >
                  {(p) => (
                    <input
                      {...p}
                      required
                      pattern="[0-9]{2}:[0-9]{2}"
                      size={5}
                      value={row.end}
                      onChange={(e) => setRow(i, { end: e.target.value })}
                    />
                  )}
                </Field>
              </div>
              <fieldset className="days">
                <legend>Days (row {n})</legend>
                {DAYS.map((day) => (
                  <label key={day} className="check">
                    <input
                      type="checkbox"
                      checked={row.days.includes(day)}
                      onChange={() =>
                        setRow(i, {
                          days: row.days.includes(day)
                            ? row.days.filter((d) => d !== day)
                            : [...row.days, day],
                        })
                      }
                    />
                    {day}
                  </label>
                ))}
                {err(`${at}.days`) && (
                  <p className="field-error" role="alert">
                    {err(`${at}.days`)}
                  </p>
                )}
              </fieldset>
              <label className="check">
                <input
                  type="checkbox"
                  checked={row.holidays}
                  onChange={(e) => setRow(i, { holidays: e.target.checked })}
                />
                Send on public holidays (row {n})
              </label>
              {manager && (
                <button
                  type="button"
                  className="small"
                  onClick={() => set({ rows: form.rows.filter((_, j) => j !== i) })}
                >
                  Remove row {n}
                </button>
              )}
            </fieldset>
          );
        })}
        {manager && (
          <button type="button" onClick={() => set({ rows: [...form.rows, newRow()] })}>
            Add sending hours row
          </button>
        )}
        {err("sendingHours") && !form.rows.length && (
          <p className="field-error" role="alert">
            {err("sendingHours")}
          </p>
        )}
      </fieldset>

      <fieldset disabled={!manager || save.busy}>
        <legend>Frequency cap and consent</legend>
        <label className="check">
          <input
            type="checkbox"
            checked={form.capOn}
            onChange={(e) => set({ capOn: e.target.checked })}
          />
          Cap marketing messages per contact
        </label>
        {form.capOn && (
          <div className="inline">
            <Field label="Messages at most" error={err("frequencyCap.messages")}>
              {(p) => (
                <input
                  {...p}
                  type="number"
                  min={1}
                  required
                  value={form.capMessages}
                  onChange={(e) => set({ capMessages: e.target.value })}
                />
              )}
            </Field>
            <Field label="In any period of hours" error={err("frequencyCap.periodHours")}>
              {(p) => (
                <input
                  {...p}
                  type="number"
                  min={1}
                  required
                  value={form.capPeriodHours}
                  onChange={(e) => set({ capPeriodHours: e.target.value })}
                />
              )}
            </Field>
          </div>
        )}
        <label className="check">
          <input
            type="checkbox"
            checked={form.requireConsent}
            onChange={(e) => set({ requireConsent: e.target.checked })}
          />
          Marketing needs the contact&apos;s consent for the channel
        </label>
      </fieldset>

      <fieldset disabled={!manager || save.busy}>
        <legend>Inbound keywords and replies</legend>
        {(
          [
            ["optOutKeywords", "Opt-out keywords", "optOutReply", "Opt-out reply"],
            ["optInKeywords", "Opt-in keywords", "optInReply", "Opt-in reply"],
            ["helpKeywords", "Help keywords", "helpReply", "Help reply"],
          ] as const
        ).map(([words, wordsLabel, reply, replyLabel]) => (
          <div key={words} className="inline">
            <Field label={wordsLabel} hint="Separated by commas." error={err(words)}>
              {(p) => (
                <input
                  {...p}
                  size={40}
                  value={form[words]}
                  onChange={(e) => set({ [words]: e.target.value })}
                />
              )}
            </Field>
            <Field label={replyLabel} hint="Empty: no reply." error={err(reply)}>
              {(p) => (
                <textarea
                  {...p}
                  rows={2}
                  cols={40}
                  value={form[reply]}
                  onChange={(e) => set({ [reply]: e.target.value })}
                />
              )}
            </Field>
          </div>
        ))}
      </fieldset>
      {manager && (
        <div className="actions">
          <button type="submit" className="primary" disabled={save.busy}>
            Save compliance
          </button>
          {saved && <span role="status">Saved.</span>}
          <ErrorText error={save.error} />
        </div>
      )}
    </form>
  );
}
