import { useId, type ReactNode } from "react";
import { ApiError, errorText } from "../api/client";
import { formatCount } from "../format";

/** A labelled control with the API's message for its field, if any, under it. */
export function Field({
  label,
  error,
  hint,
  children,
}: {
  label: string;
  error?: string | undefined;
  hint?: ReactNode;
  children: (props: {
    id: string;
    "aria-describedby"?: string;
    "aria-invalid"?: boolean;
  }) => ReactNode;
}) {
  const id = useId();
  const described = error ? `${id}-error` : hint ? `${id}-hint` : undefined;
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      {children({
        id,
        ...(described ? { "aria-describedby": described } : {}),
        ...(error ? { "aria-invalid": true } : {}),
      })}
      {hint && !error && (
        <p className="hint" id={`${id}-hint`}>
          {hint}
        </p>
      )}
      {error && (
        <p className="field-error" id={`${id}-error`} role="alert">
          {error}
        </p>
      )}
    </div>
  );
}

/** An API error in words, shown beside the control whose action caused it. */
export function ErrorText({ error }: { error: unknown }) {
  if (!error) return null;
  const extra =
    error instanceof ApiError && error.status === 402 && error.body.required !== undefined
      ? ` Required: ${String(error.body.required)}, available: ${String(error.body.available)}.`
      : "";
  return (
    <p className="action-error" role="alert">
      {errorText(error)}
      {extra}
    </p>
  );
}

/**
 * The API's message for a field. By default `text` also finds `message.text`; `exact` asks
 * for that path only (a campaign's `name`, not an A/B variant's `variants[0].name`).
 */
export function fieldError(
  error: unknown,
  field: string,
  { exact = false }: { exact?: boolean } = {},
): string | undefined {
  if (!(error instanceof ApiError)) return undefined;
  return exact ? error.fieldErrors.find((e) => e.field === field)?.message : error.forField(field);
}

/**
 * The API's messages for a field and everything inside it (`optOutKeywords` gathers
 * `optOutKeywords[2]`), joined; undefined when it named none.
 */
export function errorsUnder(error: unknown, field: string): string | undefined {
  if (!(error instanceof ApiError)) return undefined;
  const messages = error.fieldErrors
    .filter(
      (e) =>
        e.field === field || e.field.startsWith(`${field}[`) || e.field.startsWith(`${field}.`),
    )
    .map((e) => (e.field === field ? e.message : `${e.field.slice(field.length)}: ${e.message}`));
  return messages.length ? messages.join("; ") : undefined;
}

export function Loading({ what }: { what: string }) {
  return (
    <p className="muted" role="status">
      Loading {what}…
    </p>
  );
}

export function LoadError({ error }: { error: string | null }) {
  return error ? (
    <p className="action-error" role="alert">
      {error}
    </p>
  ) : null;
}

/** Server-side pagination: the API answers one page and the total. */
export function Pager({
  total,
  limit,
  offset,
  onChange,
  label,
}: {
  total: number;
  limit: number;
  offset: number;
  onChange: (offset: number) => void;
  label: string;
}) {
  const first = total === 0 ? 0 : offset + 1;
  const last = Math.min(offset + limit, total);
  return (
    <nav className="pager" aria-label={`${label} pages`}>
      <span>
        {formatCount(first)}–{formatCount(last)} of {formatCount(total)}
      </span>
      <button
        type="button"
        disabled={offset === 0}
        onClick={() => onChange(Math.max(0, offset - limit))}
      >
        Previous
      </button>
      <button type="button" disabled={last >= total} onClick={() => onChange(offset + limit)}>
        Next
      </button>
    </nav>
  );
}

export function StatusBadge({ status }: { status: string }) {
  return <span className={`badge badge-${status}`}>{status}</span>;
}

export function ProgressBar({ value, label }: { value: number; label: string }) {
  const percent = Math.round(Math.max(0, Math.min(1, value)) * 100);
  return (
    <div
      className="progress"
      role="progressbar"
      aria-label={label}
      aria-valuemin={0}
      aria-valuemax={100}
      aria-valuenow={percent}
    >
      <div className="progress-fill" style={{ width: `${percent}%` }} />
    </div>
  );
}

export function Stat({ label, value }: { label: string; value: ReactNode }) {
  return (
    <div className="stat">
      <dt>{label}</dt>
      <dd>{value}</dd>
    </div>
  );
}

export function PageHeader({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <header className="page-header">
      <h1>{title}</h1>
      {children && <div className="page-actions">{children}</div>}
    </header>
  );
}
