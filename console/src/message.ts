// What the composer shows about a message: the characters that force UCS-2, and the text a
// chosen contact would receive.

export interface Piece {
  text: string;
  ucs2: boolean;
}

/** Split `text` into runs, marking the characters the API reported as forcing UCS-2. */
export function highlightUcs2(text: string, ucs2Characters: readonly string[]): Piece[] {
  const flagged = new Set(ucs2Characters);
  const pieces: Piece[] = [];
  for (const char of text) {
    const ucs2 = flagged.has(char);
    const last = pieces[pieces.length - 1];
    if (last && last.ucs2 === ucs2) last.text += char;
    else pieces.push({ text: char, ucs2 });
  }
  return pieces;
}

export interface PreviewCounts {
  characters: number;
  parts: number;
  encoding: string;
}

/** The composer's counter line: `42 characters · 1 part · GSM-7`. */
export function counterLine({ characters, parts, encoding }: PreviewCounts): string {
  const chars = `${characters} character${characters === 1 ? "" : "s"}`;
  const partWord = `${parts} part${parts === 1 ? "" : "s"}`;
  return `${chars} · ${partWord} · ${encoding}`;
}

export interface ContactFields {
  phone: string;
  firstName?: string | null;
  lastName?: string | null;
  attributes?: Record<string, unknown> | null;
}

const VARIABLE = /\{\{\s*([A-Za-z_][\w.]*)\s*\}\}/g;

/** The variables a text uses, in order of first appearance (as the API lists them). */
export function variablesOf(text: string): string[] {
  const seen: string[] = [];
  for (const match of text.matchAll(VARIABLE)) {
    const name = match[1]!;
    if (!seen.includes(name)) seen.push(name);
  }
  return seen;
}

/**
 * The text one contact receives: contact fields first, then `templateParams` for other
 * variables and for contact fields that are empty; an unknown variable stays visible.
 */
export function personalize(
  text: string,
  contact: ContactFields | null,
  params: Record<string, string> = {},
): string {
  return text.replace(VARIABLE, (whole, name: string) => {
    let value: unknown;
    if (contact) {
      if (name.startsWith("attributes.")) value = contact.attributes?.[name.slice(11)];
      else if (name === "firstName" || name === "lastName" || name === "phone")
        value = contact[name];
    }
    if (value === undefined || value === null || value === "") value = params[name];
    return value === undefined || value === null || value === "" ? whole : String(value);
  });
}
