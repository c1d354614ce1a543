// What a SIEM receives for one outbox row, whatever the transport:
//
//   { "id": "statement:<uuid>", "type": "statement", "time": "<ISO, UTC>", "data": { …the record… } }
//
// `id` is stable (the trigger derives it from the record's id), so a receiver
// that drops ids it has already seen ends up with every event exactly once.
import type { OutboxRow } from "./outbox.js";

export type SiemEventType = "session.start" | "session.end" | "statement" | "statement.end";

export interface SiemEvent {
  id: string;
  type: string;
  /** When the record was written (the outbox row's creation). */
  time: string;
  data: Record<string, unknown>;
}

// to_jsonb of a timestamp(3) column has no zone; the store keeps UTC in them
// (Prisma's convention), so say so instead of leaving receivers to guess.
const ZONELESS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?$/;

function withZones(data: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(data)) out[k] = k.endsWith("_at") && typeof v === "string" && ZONELESS.test(v) ? `${v}Z` : v;
  return out;
}

export function toEvent(row: OutboxRow): SiemEvent {
  return { id: row.eventId, type: row.type, time: row.createdAt.toISOString(), data: withZones(row.payload) };
}

/** The session an event belongs to: the session itself, or the statement's session. */
export function sessionOf(e: SiemEvent): string | null {
  const v = e.type.startsWith("session.") ? e.data.id : e.data.session_id;
  return typeof v === "string" ? v : null;
}

export function subjectOf(e: SiemEvent): string | null {
  return typeof e.data.subject === "string" ? e.data.subject : null;
}
