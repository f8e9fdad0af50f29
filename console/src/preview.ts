// The API's count of characters, parts and encoding for a text being typed.
import { useEffect, useState } from "react";
import { call, client } from "./api/client";
import type { Preview } from "./api/types";

/** Asked again a moment after typing stops; nothing for an empty text. */
export function usePreview(channel: string, text: string, smartEncoding: boolean) {
  const [data, setData] = useState<Preview | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    if (!text) {
      setData(null);
      return;
    }
    let live = true;
    const timer = window.setTimeout(() => {
      call(client.POST("/preview", { body: { channel, text, smartEncoding } }))
        .then((p) => live && (setData(p), setError(null)))
        .catch((e: unknown) => live && setError(e instanceof Error ? e.message : String(e)));
    }, 200);
    return () => {
      live = false;
      window.clearTimeout(timer);
    };
  }, [channel, text, smartEncoding]);
  return { data, error };
}
