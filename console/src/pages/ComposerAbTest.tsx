// The composer's A/B test: variants (each its own text, or template on WhatsApp), the test
// share, the metric and the decision delay; and how the estimate splits the price.
import type { ReactNode } from "react";
import {
  blankVariant,
  dearestVariant,
  MAX_DECIDE_MINUTES,
  MAX_VARIANTS,
  metricsFor,
  MIN_VARIANTS,
  type AbDraft,
  type VariantDraft,
} from "../abtest";
import type { AbEstimate, AbTestMetric, Template } from "../api/types";
import { errorsUnder, Field, fieldError } from "../components/ui";
import { formatCount, formatCredits } from "../format";
import { counterLine } from "../message";
import { usePreview } from "../preview";

const METRIC_LABELS: Record<AbTestMetric, string> = {
  delivered: "Delivered rate (delivered or read)",
  uniqueClicks: "Unique clicks (recipients who clicked a tracked link)",
};

export function AbTestSection({
  draft,
  onChange,
  channel,
  trackLinks,
  smartEncoding,
  templates,
  error,
  disabled,
  children,
}: {
  draft: AbDraft;
  onChange: (draft: AbDraft) => void;
  channel: string;
  trackLinks: boolean;
  smartEncoding: boolean;
  templates: Template[];
  /** The last 422 of a save, estimate or confirm (or the form's own check, same shape). */
  error: unknown;
  disabled: boolean;
  /** The values of the variants' other variables, shared by all of them. */
  children?: ReactNode;
}) {
  const set = (patch: Partial<AbDraft>) => onChange({ ...draft, ...patch });
  const setVariant = (index: number, patch: Partial<VariantDraft>) =>
    set({ variants: draft.variants.map((v, i) => (i === index ? { ...v, ...patch } : v)) });
  const metrics = metricsFor(trackLinks);
  const listError = fieldError(error, "variants", { exact: true });
  const abError = fieldError(error, "abTest", { exact: true });
  const messageError = fieldError(error, "message", { exact: true });
  return (
    <fieldset className="card" disabled={disabled}>
      <legend>A/B test</legend>
      <label className="check">
        <input
          type="checkbox"
          checked={draft.enabled}
          onChange={(e) => set({ enabled: e.target.checked })}
        />
        Run an A/B test: variants go to a test share, the winner to everyone else
      </label>
      {draft.enabled && (
        <>
          {draft.variants.map((variant, i) => (
            <VariantEditor
              key={i}
              index={i}
              variant={variant}
              onChange={(patch) => setVariant(i, patch)}
              onRemove={
                draft.variants.length > MIN_VARIANTS
                  ? () => set({ variants: draft.variants.filter((_, j) => j !== i) })
                  : undefined
              }
              channel={channel}
              smartEncoding={smartEncoding}
              templates={templates}
              error={error}
            />
          ))}
          {(listError ?? messageError) && (
            <p className="field-error" role="alert">
              {listError ?? messageError}
            </p>
          )}
          {draft.variants.length < MAX_VARIANTS && (
            <button
              type="button"
              onClick={() =>
                set({ variants: [...draft.variants, blankVariant(draft.variants.length)] })
              }
            >
              Add variant
            </button>
          )}
          {children}
          <div className="inline">
            <Field
              label="Test share (%)"
              hint="Of the audience, chosen at random and split evenly between the variants."
              error={fieldError(error, "abTest.testShare", { exact: true })}
            >
              {(p) => (
                <input
                  {...p}
                  inputMode="decimal"
                  size={6}
                  value={draft.testSharePercent}
                  onChange={(e) => set({ testSharePercent: e.target.value })}
                />
              )}
            </Field>
            <Field
              label="Winning metric"
              hint={trackLinks ? undefined : "Unique clicks need link tracking."}
              error={fieldError(error, "abTest.metric", { exact: true })}
            >
              {(p) => (
                <select
                  {...p}
                  value={draft.metric}
                  onChange={(e) => set({ metric: e.target.value as AbTestMetric })}
                >
                  {/* The one chosen stays listed, so that a 422 can name it. */}
                  {Array.from(new Set([...metrics, draft.metric])).map((m) => (
                    <option key={m} value={m}>
                      {METRIC_LABELS[m]}
                    </option>
                  ))}
                </select>
              )}
            </Field>
            <Field
              label="Decide after (minutes)"
              hint={`After the last test message is sent; at most ${formatCount(MAX_DECIDE_MINUTES)}.`}
              error={fieldError(error, "abTest.decideAfterMinutes", { exact: true })}
            >
              {(p) => (
                <input
                  {...p}
                  inputMode="numeric"
                  size={6}
                  value={draft.decideAfterMinutes}
                  onChange={(e) => set({ decideAfterMinutes: e.target.value })}
                />
              )}
            </Field>
          </div>
          {abError && (
            <p className="field-error" role="alert">
              {abError}
            </p>
          )}
        </>
      )}
    </fieldset>
  );
}

function VariantEditor({
  index,
  variant,
  onChange,
  onRemove,
  channel,
  smartEncoding,
  templates,
  error,
}: {
  index: number;
  variant: VariantDraft;
  onChange: (patch: Partial<VariantDraft>) => void;
  onRemove: (() => void) | undefined;
  channel: string;
  smartEncoding: boolean;
  templates: Template[];
  error: unknown;
}) {
  const n = index + 1;
  const path = `variants[${index}]`;
  const preview = usePreview(channel, channel === "whatsapp" ? "" : variant.text, smartEncoding);
  return (
    <fieldset className="variant">
      <legend>Variant {n}</legend>
      <Field
        label={`Name of variant ${n}`}
        error={fieldError(error, `${path}.name`, { exact: true })}
      >
        {(p) => (
          <input
            {...p}
            required
            maxLength={32}
            size={12}
            value={variant.name}
            onChange={(e) => onChange({ name: e.target.value })}
          />
        )}
      </Field>
      {channel === "whatsapp" ? (
        <Field label={`Template of variant ${n}`} error={errorsUnder(error, `${path}.message`)}>
          {(p) => (
            <select
              {...p}
              value={variant.templateId ?? ""}
              onChange={(e) =>
                onChange({ templateId: e.target.value ? Number(e.target.value) : null })
              }
            >
              <option value="">Choose a template</option>
              {templates.map((t) => (
                <option key={t.id} value={t.id}>
                  {t.name} ({t.category ?? "no category"}, {t.status})
                </option>
              ))}
            </select>
          )}
        </Field>
      ) : (
        <>
          <Field label={`Text of variant ${n}`} error={errorsUnder(error, `${path}.message`)}>
            {(p) => (
              <textarea
                {...p}
                rows={3}
                value={variant.text}
                onChange={(e) => onChange({ text: e.target.value })}
              />
            )}
          </Field>
          <p className="counter" aria-live="polite">
            {preview.data ? counterLine(preview.data) : (preview.error ?? "\u00a0")}
          </p>
        </>
      )}
      {onRemove && (
        <button type="button" className="small" onClick={onRemove}>
          Remove variant {n}
        </button>
      )}
    </fieldset>
  );
}

/** The estimate's A/B split: what confirm reserves, and why it is the worst case. */
export function AbEstimateView({ split, price }: { split: AbEstimate; price: number }) {
  const dearest = dearestVariant(split.variants);
  return (
    <div data-testid="ab-estimate">
      <p className="muted">
        Confirm reserves {formatCredits(price)}: the test share at each variant&apos;s own price,
        the other {formatCount(split.remainderRecipients)} recipients at the dearest variant&apos;s
        {dearest ? ` (${dearest.name})` : ""}. Once the winner is known, what it costs less is
        released.
      </p>
      <table>
        <caption>A/B split</caption>
        <thead>
          <tr>
            <th scope="col">Part</th>
            <th scope="col" className="num">
              Recipients
            </th>
            <th scope="col" className="num">
              Units
            </th>
            <th scope="col" className="num">
              Price
            </th>
            <th scope="col" className="num">
              Price for the whole audience
            </th>
          </tr>
        </thead>
        <tbody>
          {split.variants.map((v) => (
            <tr key={v.name}>
              <th scope="row">Test: {v.name}</th>
              <td className="num">{formatCount(v.testRecipients)}</td>
              <td className="num">{formatCount(v.testUnits)}</td>
              <td className="num">{formatCredits(v.testPrice)}</td>
              <td className="num">{formatCredits(v.audiencePrice)}</td>
            </tr>
          ))}
          <tr>
            <th scope="row">Remainder{dearest ? ` (as ${dearest.name})` : ""}</th>
            <td className="num">{formatCount(split.remainderRecipients)}</td>
            <td className="num">{formatCount(split.remainderUnits)}</td>
            <td className="num">{formatCredits(split.remainderPrice)}</td>
            <td className="num">—</td>
          </tr>
        </tbody>
      </table>
    </div>
  );
}
