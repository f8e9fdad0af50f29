// The contact page's consent per channel and its history of opt-outs, opt-ins and consent
// changes (newest first, paginated by the server).
import { useState } from "react";
import { call, client } from "../api/client";
import { CHANNELS, type Contact, type HistoryItem } from "../api/types";
import { LoadError, Pager } from "../components/ui";
import { formatDateTime } from "../format";
import { useLoad } from "../hooks";

const LIMIT = 20;

export function Consent({ contact }: { contact: Contact }) {
  return (
    <section className="card" aria-labelledby="consent-title">
      <h2 id="consent-title">Consent</h2>
      <table aria-labelledby="consent-title">
        <thead>
          <tr>
            <th scope="col">Channel</th>
            <th scope="col">Consent</th>
            <th scope="col">Since</th>
            <th scope="col">Source</th>
            <th scope="col">Proof</th>
          </tr>
        </thead>
        <tbody>
          {CHANNELS.map((channel) => {
            const consent = contact.consent[channel];
            return (
              <tr key={channel}>
                <th scope="row">{channel}</th>
                <td>{consent?.status ?? "not asked"}</td>
                <td>{consent ? formatDateTime(consent.at) : ""}</td>
                <td>{consent?.source ?? ""}</td>
                <td>{consent?.proof ?? ""}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </section>
  );
}

function whatHappened(item: HistoryItem): string {
  if (item.kind === "consent") return `consent ${item.status ?? ""}`.trim();
  return item.kind === "opt_out" ? "opted out" : "opted in";
}

function actorName(actor: HistoryItem["actor"]): string {
  if (!actor) return "—";
  return actor.name ? `${actor.name} (${actor.type})` : actor.type;
}

/** Reloaded when `version` (the contact's updatedAt) moves, as a save adds entries. */
export function History({ contactId, version }: { contactId: number; version: string }) {
  const [offset, setOffset] = useState(0);
  const history = useLoad(
    () =>
      call(
        client.GET("/contacts/{contact_id}/history", {
          params: { path: { contact_id: contactId }, query: { limit: LIMIT, offset } },
        }),
      ),
    `history-${contactId}-${offset}-${version}`,
  );
  return (
    <section className="card" aria-labelledby="history-title">
      <h2 id="history-title">History</h2>
      <LoadError error={history.error} />
      {history.data && (
        <>
          <table aria-labelledby="history-title">
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">What</th>
                <th scope="col">Channel</th>
                <th scope="col">Source</th>
                <th scope="col">Who</th>
                <th scope="col">Detail</th>
              </tr>
            </thead>
            <tbody>
              {history.data.items.map((item, i) => (
                <tr key={`${offset + i}`}>
                  <td>{formatDateTime(item.at)}</td>
                  <td>{whatHappened(item)}</td>
                  <td>{item.channel}</td>
                  <td>{item.source}</td>
                  <td>{actorName(item.actor)}</td>
                  <td>{item.detail ?? ""}</td>
                </tr>
              ))}
              {history.data.items.length === 0 && (
                <tr>
                  <td colSpan={6} className="muted">
                    No opt-out, opt-in or consent change yet.
                  </td>
                </tr>
              )}
            </tbody>
          </table>
          <Pager
            label="History"
            total={history.data.total}
            limit={LIMIT}
            offset={offset}
            onChange={setOffset}
          />
        </>
      )}
    </section>
  );
}
