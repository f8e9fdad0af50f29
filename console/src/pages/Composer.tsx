// The campaign composer: audience, sender, message with live counters, cost, test, confirm.
import { useRef, useState, type FormEvent } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { abBody, abDraftOf, checkAb, paramsOf } from "../abtest";
import { ApiError, call, client } from "../api/client";
import { CHANNELS, type Campaign, type Channel, type Contact, type Estimate } from "../api/types";
import {
  ErrorText,
  Field,
  fieldError,
  LoadError,
  Loading,
  PageHeader,
  StatusBadge,
} from "../components/ui";
import { formatCount, formatCredits, zonedToUtc } from "../format";
import { useAction, useLoad } from "../hooks";
import { counterLine, highlightUcs2, personalize, variablesOf } from "../message";
import { usePreview } from "../preview";
import { AbEstimateView, AbTestSection } from "./ComposerAbTest";
import { useSession } from "../session";

const CONTACT_FIELDS = new Set(["firstName", "lastName", "phone"]);
const LOCAL_ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
// Every IANA zone the browser knows, with UTC and the browser's own zone always offered.
const ZONES: string[] = Array.from(
  new Set([
    "UTC",
    LOCAL_ZONE,
    ...(typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : []),
  ]),
);

export default function ComposerPage() {
  const { id } = useParams();
  const existing = useLoad(
    () =>
      id
        ? call(
            client.GET("/campaigns/{campaign_id}", {
              params: { path: { campaign_id: Number(id) } },
            }),
          )
        : Promise.resolve(null),
    `campaign-${id ?? "new"}`,
  );
  if (id && !existing.data) {
    return existing.error ? <LoadError error={existing.error} /> : <Loading what="the campaign" />;
  }
  return <Composer key={id ?? "new"} campaign={existing.data} />;
}

export function Composer({ campaign }: { campaign: Campaign | null }) {
  const { can } = useSession();
  const navigate = useNavigate();
  const [saved, setSaved] = useState<Campaign | null>(campaign);
  const message = (campaign?.message ?? {}) as {
    text?: string | null;
    templateId?: number | null;
    templateParams?: Record<string, string> | null;
  };
  const [name, setName] = useState(campaign?.name ?? "");
  const [channel, setChannel] = useState(campaign?.channel ?? "sms");
  const [listIds, setListIds] = useState<number[]>(campaign?.listIds ?? []);
  const [excludeListIds, setExcludeListIds] = useState<number[]>(campaign?.excludeListIds ?? []);
  const [sender, setSender] = useState(campaign?.sender ?? "");
  const [fallback, setFallback] = useState(campaign?.fallbackChannel === "sms");
  const [purpose, setPurpose] = useState<"marketing" | "transactional">(
    campaign?.purpose ?? "marketing",
  );
  const [smartEncoding, setSmartEncoding] = useState(campaign?.smartEncoding ?? false);
  const [trackLinks, setTrackLinks] = useState(campaign?.trackLinks ?? false);
  const [text, setText] = useState(message.text ?? "");
  const [templateId, setTemplateId] = useState<number | null>(message.templateId ?? null);
  const [params, setParams] = useState<Record<string, string>>(() => paramsOf(campaign));
  const [ab, setAb] = useState(() => abDraftOf(campaign, message.text ?? ""));
  const [estimate, setEstimate] = useState<Estimate | null>(null);
  const [testPhone, setTestPhone] = useState("");
  const [testResult, setTestResult] = useState<string | null>(null);
  const [day, setDay] = useState("");
  const [time, setTime] = useState("09:00");
  const [zone, setZone] = useState(LOCAL_ZONE);
  const idempotency = useRef({ create: crypto.randomUUID(), confirm: crypto.randomUUID() });

  const save = useAction();
  const estimating = useAction();
  const testing = useAction();
  const confirming = useAction();
  const scheduling = useAction();

  const lists = useLoad(
    () => call(client.GET("/lists", { params: { query: { limit: 200 } } })),
    "lists",
  );
  const templates = useLoad(
    () =>
      call(
        client.GET("/templates", {
          params: { query: { channel: channel as Channel, limit: 200 } },
        }),
      ),
    `templates-${channel}`,
  );
  const settings = useLoad(() => call(client.GET("/account/settings")), "settings");
  const approval = settings.data?.approvalRequired ?? false;
  const templateBody = (id: number | null) =>
    templates.data?.items.find((t) => t.id === id)?.body ?? "";
  const body = channel === "whatsapp" ? templateBody(templateId) : text;
  // With an A/B test, the variables of every variant (their values are shared).
  const bodies = ab.enabled
    ? ab.variants.map((v) => (channel === "whatsapp" ? templateBody(v.templateId) : v.text))
    : [body];
  const variables = Array.from(new Set(bodies.flatMap((b) => variablesOf(b))));
  const extraVariables = variables.filter(
    (v) => !CONTACT_FIELDS.has(v) && !v.startsWith("attributes."),
  );
  const preview = usePreview(channel, body, channel === "sms" && smartEncoding);
  const [contact, setContact] = useState<Contact | null>(null);
  const editable = can("editor") && (!saved || saved.status === "draft");

  const payload = () => ({
    ...(ab.enabled
      ? abBody(ab, channel, params, templateBody)
      : {
          message:
            channel === "whatsapp"
              ? { templateId, templateParams: params }
              : { text, templateParams: Object.keys(params).length ? params : null },
        }),
    name,
    channel,
    listIds,
    excludeListIds,
    sender: sender || null,
    fallbackChannel: channel === "rcs" && fallback ? "sms" : null,
    purpose,
    smartEncoding: channel === "sms" && smartEncoding,
    trackLinks: channel !== "whatsapp" && trackLinks,
  });

  // Each of these saves the draft first: a new attempt clears the refusals of the others,
  // so that the fields show only what the server said last.
  const saving = [save, estimating, confirming, scheduling];
  const settle = (action: (typeof saving)[number]) => {
    for (const other of saving) if (other !== action && other.error) other.clear();
    return action;
  };

  /** Create or update the draft; every action below works on the saved campaign. */
  const persist = async (): Promise<Campaign> => {
    const problems = ab.enabled ? checkAb(ab, channel !== "whatsapp" && trackLinks) : [];
    if (problems.length) {
      // Shown exactly as the server's 422 would be, under the fields it names.
      throw new ApiError(422, {
        title: "Check the A/B test",
        detail: problems.map((p) => p.message).join(" "),
        errors: problems,
      });
    }
    const result = saved
      ? await call(
          client.PUT("/campaigns/{campaign_id}", {
            params: { path: { campaign_id: saved.id } },
            body: payload(),
          }),
        )
      : await call(
          client.POST("/campaigns", {
            params: { header: { "Idempotency-Key": idempotency.current.create } },
            body: payload(),
          }),
        );
    setSaved(result);
    if (!saved) window.history.replaceState(null, "", `/campaigns/${result.id}/edit`);
    return result;
  };

  const onSave = (event: FormEvent) => {
    event.preventDefault();
    settle(save);
    void save.run(persist);
  };
  const onEstimate = () =>
    settle(estimating).run(async () => {
      const c = await persist();
      setEstimate(
        await call(
          client.POST("/campaigns/{campaign_id}/calculateGoal", {
            params: { path: { campaign_id: c.id } },
          }),
        ),
      );
    });
  const onTest = () =>
    testing.run(async () => {
      const c = await persist();
      const result = await call(
        client.POST("/campaigns/{campaign_id}/test", {
          params: { path: { campaign_id: c.id } },
          body: { phones: [testPhone] },
        }),
      );
      const first = result.results[0] as
        { status?: string; errorMessage?: string | null } | undefined;
      setTestResult(
        first
          ? `Test ${first.status ?? "sent"}${first.errorMessage ? `: ${first.errorMessage}` : ""}`
          : "Test sent",
      );
    });
  const onConfirm = (scheduledAt?: string) =>
    settle(scheduledAt ? scheduling : confirming).run(async () => {
      const c = await persist();
      const path = { campaign_id: c.id };
      const body = scheduledAt ? { scheduledAt } : {};
      if (approval) {
        await call(client.PUT("/campaigns/{campaign_id}/submit", { params: { path }, body }));
      } else {
        await call(
          client.PUT("/campaigns/{campaign_id}/confirm", {
            params: { path, header: { "Idempotency-Key": idempotency.current.confirm } },
            body,
          }),
        );
      }
      navigate(`/campaigns/${c.id}`);
    });
  const onSchedule = () => {
    let at: string;
    try {
      at = zonedToUtc(day, time, zone);
    } catch (error) {
      void scheduling.run(() => Promise.reject(error));
      return;
    }
    void onConfirm(at);
  };

  const valueFields = extraVariables.map((v) => (
    <Field key={v} label={`Value for ${v}`}>
      {(p) => (
        <input
          {...p}
          value={params[v] ?? ""}
          onChange={(e) => setParams({ ...params, [v]: e.target.value })}
        />
      )}
    </Field>
  ));
  // The refusal of the latest attempt (see settle), whichever action made it.
  const formError = save.error ?? estimating.error ?? confirming.error ?? scheduling.error;
  const toggle = (ids: number[], set: (ids: number[]) => void, id: number) =>
    set(ids.includes(id) ? ids.filter((x) => x !== id) : [...ids, id]);

  return (
    <>
      <PageHeader title={saved ? saved.name || "Campaign" : "New campaign"}>
        {saved && <StatusBadge status={saved.status} />}
      </PageHeader>
      {!can("editor") && (
        <p className="muted">Your role can read campaigns; an editor or above composes them.</p>
      )}
      <form className="composer" onSubmit={onSave}>
        <fieldset disabled={!editable} className="card">
          <legend>Audience</legend>
          <Field label="Name" error={fieldError(formError, "name", { exact: true })}>
            {(p) => (
              <input {...p} required value={name} onChange={(e) => setName(e.target.value)} />
            )}
          </Field>
          <Field label="Channel" error={fieldError(formError, "channel")}>
            {(p) => (
              <select {...p} value={channel} onChange={(e) => setChannel(e.target.value)}>
                {CHANNELS.map((c) => (
                  <option key={c} value={c}>
                    {c === "sms" ? "SMS" : c === "rcs" ? "RCS" : "WhatsApp"}
                  </option>
                ))}
              </select>
            )}
          </Field>
          <LoadError error={lists.error} />
          <div className="pickers">
            <ListPicker
              legend="Lists"
              lists={lists.data?.items ?? []}
              chosen={listIds}
              onToggle={(id) => toggle(listIds, setListIds, id)}
              error={fieldError(formError, "listIds")}
            />
            <ListPicker
              legend="Exclude lists"
              lists={lists.data?.items ?? []}
              chosen={excludeListIds}
              onToggle={(id) => toggle(excludeListIds, setExcludeListIds, id)}
              error={fieldError(formError, "excludeListIds")}
            />
          </div>
          {channel === "rcs" && (
            <label className="check">
              <input
                type="checkbox"
                checked={fallback}
                onChange={(e) => setFallback(e.target.checked)}
              />
              Send by SMS to recipients whose phone cannot take RCS
            </label>
          )}
          <Field label="Purpose" error={fieldError(formError, "purpose")}>
            {(p) => (
              <select
                {...p}
                value={purpose}
                onChange={(e) => setPurpose(e.target.value as "marketing" | "transactional")}
              >
                <option value="marketing">Marketing (sending hours and frequency cap apply)</option>
                <option value="transactional">Transactional</option>
              </select>
            )}
          </Field>
          {channel !== "whatsapp" && (
            <label className="check">
              <input
                type="checkbox"
                checked={trackLinks}
                onChange={(e) => setTrackLinks(e.target.checked)}
              />
              Track links (each URL becomes a short link per recipient)
            </label>
          )}
          {channel === "sms" && (
            <label className="check">
              <input
                type="checkbox"
                checked={smartEncoding}
                onChange={(e) => setSmartEncoding(e.target.checked)}
              />
              Smart encoding (replace typographic characters by GSM-7 look-alikes)
            </label>
          )}
          <Field
            label="Sender"
            error={fieldError(formError, "sender")}
            hint="Up to 11 letters or 15 digits, as the recipient sees it."
          >
            {(p) => (
              <input
                {...p}
                maxLength={15}
                value={sender}
                onChange={(e) => setSender(e.target.value)}
              />
            )}
          </Field>
        </fieldset>

        <AbTestSection
          draft={ab}
          onChange={(next) => {
            // Turning the test on starts variant 1 from the message written so far.
            const first = next.variants[0];
            if (next.enabled && !ab.enabled && first && !first.text && !first.templateId) {
              next = {
                ...next,
                variants: [{ ...first, text, templateId }, ...next.variants.slice(1)],
              };
            }
            setAb(next);
          }}
          channel={channel}
          trackLinks={channel !== "whatsapp" && trackLinks}
          smartEncoding={channel === "sms" && smartEncoding}
          templates={templates.data?.items ?? []}
          error={formError}
          disabled={!editable}
        >
          {variables.length > 0 && (
            <p className="muted">Variables: {variables.map((v) => `{{${v}}}`).join(", ")}</p>
          )}
          {valueFields}
        </AbTestSection>

        {!ab.enabled && (
          <fieldset disabled={!editable} className="card message-card">
            <legend>Message</legend>
            <div className="message-grid">
              <div>
                {channel === "whatsapp" ? (
                  <Field label="Template" error={fieldError(formError, "templateId")}>
                    {(p) => (
                      <select
                        {...p}
                        value={templateId ?? ""}
                        onChange={(e) =>
                          setTemplateId(e.target.value ? Number(e.target.value) : null)
                        }
                      >
                        <option value="">Choose a template</option>
                        {templates.data?.items.map((t) => (
                          <option key={t.id} value={t.id}>
                            {t.name} ({t.category ?? "no category"}, {t.status})
                          </option>
                        ))}
                      </select>
                    )}
                  </Field>
                ) : (
                  <Field label="Message text" error={fieldError(formError, "text")}>
                    {(p) => (
                      <textarea
                        {...p}
                        rows={6}
                        value={text}
                        onChange={(e) => setText(e.target.value)}
                      />
                    )}
                  </Field>
                )}
                <p className="counter" aria-live="polite" data-testid="counter">
                  {preview.data ? counterLine(preview.data) : (preview.error ?? "\u00a0")}
                </p>
                {preview.data && preview.data.replaced.length > 0 && (
                  <p className="muted" data-testid="smart-encoding">
                    Smart encoding replaces{" "}
                    {preview.data.replaced
                      .map((r) => `${r.from} with ${r.to || "nothing"} (${r.count})`)
                      .join(", ")}
                    .
                  </p>
                )}
                {preview.data && preview.data.ucs2Characters.length > 0 && channel === "sms" && (
                  <div className="warning" role="status">
                    <strong>UCS-2:</strong> these characters force UCS-2 encoding (70 characters per
                    part instead of 160): {preview.data.ucs2Characters.join(" ")}
                    <p className="highlighted" aria-label="Message with UCS-2 characters marked">
                      {highlightUcs2(body, preview.data.ucs2Characters).map((piece, i) =>
                        piece.ucs2 ? (
                          <mark key={i}>{piece.text}</mark>
                        ) : (
                          <span key={i}>{piece.text}</span>
                        ),
                      )}
                    </p>
                  </div>
                )}
                {variables.length > 0 && (
                  <p className="muted">Variables: {variables.map((v) => `{{${v}}}`).join(", ")}</p>
                )}
                {valueFields}
              </div>
              <PhonePreview
                listId={listIds[0] ?? null}
                contact={contact}
                onContact={setContact}
                text={personalize(body, contact, params)}
                sender={sender}
              />
            </div>
          </fieldset>
        )}

        {editable && (
          <div className="actions">
            <button type="submit" disabled={save.busy}>
              Save draft
            </button>
            <ErrorText error={save.error} />
          </div>
        )}
      </form>

      {editable && (
        <section className="card" aria-labelledby="cost-title">
          <h2 id="cost-title">Cost</h2>
          <div className="actions">
            <button type="button" onClick={() => void onEstimate()} disabled={estimating.busy}>
              Estimate cost
            </button>
            <ErrorText error={estimating.error} />
          </div>
          {estimate && <EstimateView estimate={estimate} />}
          {estimate?.abTest && <AbEstimateView split={estimate.abTest} price={estimate.price} />}
        </section>
      )}

      {editable && (
        <section className="card" aria-labelledby="test-title">
          <h2 id="test-title">Test</h2>
          <div className="inline">
            <Field label="Test phone" error={fieldError(testing.error, "phones")}>
              {(p) => (
                <input
                  {...p}
                  type="tel"
                  value={testPhone}
                  onChange={(e) => setTestPhone(e.target.value)}
                />
              )}
            </Field>
            <button
              type="button"
              onClick={() => void onTest()}
              disabled={testing.busy || !testPhone}
            >
              Send test
            </button>
          </div>
          {testResult && <p role="status">{testResult}</p>}
          <ErrorText error={testing.error} />
        </section>
      )}

      {editable && (
        <section className="card" aria-labelledby="send-title">
          <h2 id="send-title">{approval ? "Approval" : "Send"}</h2>
          {approval && (
            <p className="muted">
              This account requires approval: another manager approves the campaign before it goes
              out.
            </p>
          )}
          {approval || can("manager") ? (
            <>
              <div className="actions">
                <button
                  type="button"
                  className="primary"
                  onClick={() => void onConfirm()}
                  disabled={confirming.busy}
                >
                  {approval ? "Submit for approval" : "Confirm"}
                </button>
                <ErrorText error={confirming.error} />
              </div>
              <div className="inline schedule">
                <Field label="Date">
                  {(p) => (
                    <input
                      {...p}
                      type="date"
                      value={day}
                      onChange={(e) => setDay(e.target.value)}
                    />
                  )}
                </Field>
                <Field label="Time">
                  {(p) => (
                    <input
                      {...p}
                      type="time"
                      value={time}
                      onChange={(e) => setTime(e.target.value)}
                    />
                  )}
                </Field>
                <Field label="Time zone">
                  {(p) => (
                    <select {...p} value={zone} onChange={(e) => setZone(e.target.value)}>
                      {ZONES.map((z) => (
                        <option key={z}>{z}</option>
                      ))}
                    </select>
                  )}
                </Field>
                <button type="button" onClick={onSchedule} disabled={scheduling.busy || !day}>
                  {approval ? "Submit scheduled" : "Schedule"}
                </button>
              </div>
              <ErrorText error={scheduling.error} />
            </>
          ) : (
            <p className="muted">A manager confirms or schedules this campaign once it is ready.</p>
          )}
        </section>
      )}
      {saved && saved.status !== "draft" && (
        <p>
          <Link to={`/campaigns/${saved.id}`}>Back to the campaign</Link>
        </p>
      )}
    </>
  );
}

function ListPicker({
  legend,
  lists,
  chosen,
  onToggle,
  error,
}: {
  legend: string;
  lists: { id: number; name: string; contactCount: number }[];
  chosen: number[];
  onToggle: (id: number) => void;
  error?: string | undefined;
}) {
  return (
    <fieldset className="list-picker">
      <legend>{legend}</legend>
      {lists.length === 0 && <p className="muted">No list yet.</p>}
      {lists.map((list) => (
        <label key={list.id} className="check">
          <input
            type="checkbox"
            checked={chosen.includes(list.id)}
            onChange={() => onToggle(list.id)}
          />
          {list.name} <span className="muted">({formatCount(list.contactCount)})</span>
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

function PhonePreview({
  listId,
  contact,
  onContact,
  text,
  sender,
}: {
  listId: number | null;
  contact: Contact | null;
  onContact: (c: Contact | null) => void;
  text: string;
  sender: string;
}) {
  const [search, setSearch] = useState("");
  const found = useLoad(
    () =>
      call(
        client.GET("/contacts", {
          params: {
            query: { limit: 10, ...(search ? { search } : {}), ...(listId ? { listId } : {}) },
          },
        }),
      ),
    `preview-${listId}-${search}`,
  );
  return (
    <div className="phone-side">
      <Field label="Preview for contact">
        {(p) => (
          <select
            {...p}
            value={contact?.id ?? ""}
            onChange={(e) =>
              onContact(found.data?.items.find((c) => c.id === Number(e.target.value)) ?? null)
            }
          >
            <option value="">No contact (variables shown as written)</option>
            {found.data?.items.map((c) => (
              <option key={c.id} value={c.id}>
                {[c.firstName, c.lastName].filter(Boolean).join(" ") || c.phone} · {c.phone}
              </option>
            ))}
          </select>
        )}
      </Field>
      <Field label="Find a contact">
        {(p) => (
          <input {...p} type="search" value={search} onChange={(e) => setSearch(e.target.value)} />
        )}
      </Field>
      <div className="phone" aria-label="Phone preview" role="figure">
        <div className="phone-top">{sender || "Sender"}</div>
        <div className="bubble">
          {text || <span className="muted">Your message appears here.</span>}
        </div>
        {contact && <div className="phone-to">to {contact.phone}</div>}
      </div>
    </div>
  );
}

export function EstimateView({ estimate }: { estimate: Estimate }) {
  return (
    <div className="estimate" aria-live="polite">
      <dl className="stats">
        <div className="stat">
          <dt>Price</dt>
          <dd data-testid="estimate-price">{formatCredits(estimate.price)}</dd>
        </div>
        <div className="stat">
          <dt>Recipients</dt>
          <dd>{formatCount(estimate.recipients)}</dd>
        </div>
        <div className="stat">
          <dt>Units</dt>
          <dd>{formatCount(estimate.units)}</dd>
        </div>
        <div className="stat">
          <dt>Available</dt>
          <dd>{formatCredits(estimate.available)}</dd>
        </div>
      </dl>
      <p className="muted">
        {estimate.encoding
          ? `${estimate.encoding}, up to ${estimate.maxParts ?? 1} part${(estimate.maxParts ?? 1) === 1 ? "" : "s"}. `
          : ""}
        Excluded: {formatCount(estimate.excluded.duplicates)} duplicates,{" "}
        {formatCount(estimate.excluded.optedOut)} opted out,{" "}
        {formatCount(estimate.excluded.invalid)} invalid, {formatCount(estimate.excluded.noConsent)}{" "}
        without consent, {formatCount(estimate.excluded.frequencyCapped)} over the frequency cap.
        {estimate.unitsWithoutSmartEncoding != null &&
        estimate.unitsWithoutSmartEncoding > estimate.units
          ? ` Smart encoding saves ${formatCount(estimate.unitsWithoutSmartEncoding - estimate.units)} units.`
          : ""}
        {estimate.schedule && estimate.schedule.held > 0
          ? ` ${formatCount(estimate.schedule.held)} recipients wait for their sending hours.`
          : ""}
        {estimate.sufficient ? "" : " Not enough credits available."}
      </p>
      <table>
        <caption>Cost by country</caption>
        <thead>
          <tr>
            <th scope="col">Country</th>
            <th scope="col" className="num">
              Recipients
            </th>
            <th scope="col" className="num">
              Units
            </th>
            <th scope="col" className="num">
              Unit price
            </th>
            <th scope="col" className="num">
              Price
            </th>
          </tr>
        </thead>
        <tbody>
          {estimate.breakdown.map((row) => (
            <tr key={row.country}>
              <td>{row.country}</td>
              <td className="num">{formatCount(row.recipients)}</td>
              <td className="num">{formatCount(row.units)}</td>
              <td className="num">{formatCredits(row.unitPrice)}</td>
              <td className="num">{formatCredits(row.price)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
