// Live updates over Server-Sent Events. The browser reconnects by itself and sends
// Last-Event-ID, so the server first replays the current state of what changed meanwhile.
// Should the stream be refused outright (a proxy that drops it, a server without it), the
// page falls back to asking for the state every few seconds.
import { useEffect, useRef } from "react";

const FALLBACK_POLL_MS = 2_000;

export function useEvents<T>(
  url: string | null,
  event: string,
  onData: (data: T) => void,
  poll?: () => Promise<T | null>,
): void {
  const handler = useRef(onData);
  const poller = useRef(poll);
  useEffect(() => {
    handler.current = onData;
    poller.current = poll;
  });
  useEffect(() => {
    if (!url) return;
    let timer: number | undefined;
    const startPolling = () => {
      if (timer !== undefined || !poller.current) return;
      timer = window.setInterval(() => {
        void poller.current?.().then(
          (data) => data && handler.current(data),
          () => undefined,
        );
      }, FALLBACK_POLL_MS);
    };
    if (typeof EventSource === "undefined") {
      startPolling();
      return () => window.clearInterval(timer);
    }
    const source = new EventSource(url);
    const listener = (message: MessageEvent<string>) => {
      try {
        handler.current(JSON.parse(message.data) as T);
      } catch {
        // A malformed event is skipped; the next one carries the whole state again.
      }
    };
    const onError = () => {
      if (source.readyState === EventSource.CLOSED) startPolling();
    };
    source.addEventListener(event, listener as EventListener);
    source.addEventListener("error", onError);
    return () => {
      source.close();
      window.clearInterval(timer);
    };
  }, [url, event]);
}

/** Call `tick` every `ms` while `active`. */
export function useInterval(active: boolean, ms: number, tick: () => void): void {
  const saved = useRef(tick);
  useEffect(() => {
    saved.current = tick;
  });
  useEffect(() => {
    if (!active) return;
    const timer = window.setInterval(() => saved.current(), ms);
    return () => window.clearInterval(timer);
  }, [active, ms]);
}
