// Live updates over Server-Sent Events. The browser reconnects by itself and sends
// Last-Event-ID, so the server first replays the current state of what changed meanwhile.
import { useEffect, useRef } from "react";

export function useEvents<T>(url: string | null, event: string, onData: (data: T) => void): void {
  const handler = useRef(onData);
  useEffect(() => {
    handler.current = onData;
  });
  useEffect(() => {
    if (!url || typeof EventSource === "undefined") return;
    const source = new EventSource(url);
    const listener = (message: MessageEvent<string>) => {
      try {
        handler.current(JSON.parse(message.data) as T);
      } catch {
        // A malformed event is skipped; the next one carries the whole state again.
      }
    };
    source.addEventListener(event, listener as EventListener);
    return () => {
      source.removeEventListener(event, listener as EventListener);
      source.close();
    };
  }, [url, event]);
}
