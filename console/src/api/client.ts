// The typed API client, generated from the served OpenAPI schema (src/api/schema.d.ts).
// The session cookie travels by itself; writes carry the CSRF token the server set.
import createClient, { type Middleware } from "openapi-fetch";
import type { paths } from "./schema";

export const CSRF_COOKIE = "clarion_csrf";

export function readCookie(name: string, cookies: string = document.cookie): string | null {
  for (const part of cookies.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return null;
}

const csrf: Middleware = {
  onRequest({ request }) {
    if (!["GET", "HEAD", "OPTIONS"].includes(request.method)) {
      const token = readCookie(CSRF_COOKIE);
      if (token) request.headers.set("X-CSRF-Token", token);
    }
    request.headers.set("Accept", request.headers.get("Accept") ?? "application/json");
    return request;
  },
};

export const client = createClient<paths>({ baseUrl: "", credentials: "same-origin" });
client.use(csrf);

export interface FieldError {
  field: string;
  message: string;
}

/** An RFC 9457 problem document the API answered, in words a person can read. */
export class ApiError extends Error {
  readonly status: number;
  readonly title: string;
  readonly fieldErrors: FieldError[];
  readonly body: Record<string, unknown>;

  constructor(status: number, body: Record<string, unknown>) {
    const title = typeof body.title === "string" ? body.title : `Error ${status}`;
    const detail = typeof body.detail === "string" ? body.detail : title;
    super(detail);
    this.status = status;
    this.title = title;
    this.body = body;
    this.fieldErrors = Array.isArray(body.errors)
      ? body.errors.flatMap((entry: unknown) => {
          if (typeof entry !== "object" || entry === null) return [];
          const { field, message } = entry as Record<string, unknown>;
          return [{ field: String(field ?? ""), message: String(message ?? "") }];
        })
      : [];
  }

  /** The message for one field (`listIds`, `message.text`), if the API named it. */
  forField(field: string): string | undefined {
    return this.fieldErrors.find((e) => e.field === field || e.field.endsWith(`.${field}`))
      ?.message;
  }
}

interface FetchResult<T> {
  data?: T;
  error?: unknown;
  response: Response;
}

/** Await an openapi-fetch call: its data, or an ApiError with the problem's words. */
export async function call<T>(pending: Promise<FetchResult<T>>): Promise<T> {
  let result: FetchResult<T>;
  try {
    result = await pending;
  } catch {
    throw new ApiError(0, {
      title: "Network error",
      detail: "The server did not answer. Check that it is running.",
    });
  }
  if (!result.response.ok) {
    const body =
      typeof result.error === "object" && result.error !== null
        ? (result.error as Record<string, unknown>)
        : { title: result.response.statusText, detail: String(result.error ?? "") || undefined };
    if (result.response.status === 401) window.dispatchEvent(new Event("clarion:signed-out"));
    throw new ApiError(result.response.status, body);
  }
  return result.data as T;
}

export function errorText(error: unknown): string {
  if (error instanceof ApiError) {
    const fields = error.fieldErrors.map((e) => `${e.field}: ${e.message}`).join("; ");
    return fields && !error.message.includes(fields)
      ? `${error.message} (${fields})`
      : error.message;
  }
  return error instanceof Error ? error.message : String(error);
}
