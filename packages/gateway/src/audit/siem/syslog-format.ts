// RFC 5424 messages and RFC 6587 octet-counting frames for the syslog sink.
//
//   <PRI>1 TIMESTAMP HOSTNAME airlock PROCID MSGID [airlock@32473 event_id="…" session="…" subject="…"] MSG
//
// Facility 13 (log audit). MSGID is the event type. MSG is the record as
// compact JSON with every non-ASCII character escaped (\uXXXX): pure ASCII is
// valid MSG-ANY whatever charset a collector assumes, and still the same JSON.
// https://www.rfc-editor.org/rfc/rfc5424 (sections 6, 6.3.3 for escaping)
// https://www.rfc-editor.org/rfc/rfc6587#section-3.4.1 (octet counting)
import { sessionOf, subjectOf, type SiemEvent } from "./events.js";

const FACILITY_LOG_AUDIT = 13;
const SEVERITY_NOTICE = 5;
const SEVERITY_INFO = 6;
/** 32473 is the enterprise number RFC 5612 reserves for documentation and examples. */
export const SD_ID = "airlock@32473";
export const APP_NAME = "airlock";

export interface SyslogHeader {
  hostname: string;
  procId: string;
}

/**
 * Header fields are PRINTUSASCII (33..126) with a maximum length; an empty
 * field is the NILVALUE "-". Anything else is replaced rather than sent broken.
 */
export function headerField(value: string | null | undefined, max: number): string {
  const clean = (value ?? "").replace(/[^\x21-\x7e]/g, "_").slice(0, max);
  return clean === "" ? "-" : clean;
}

/** PARAM-VALUE escaping (RFC 5424 6.3.3): `"`, `\` and `]` get a backslash; nothing else may be escaped. */
export function escapeParamValue(value: string): string {
  return value.replace(/["\\\]]/g, (c) => `\\${c}`);
}

/** JSON with non-ASCII as \uXXXX escapes (surrogate pairs stay pairs, so it parses back identically). */
export function asciiJson(value: unknown): string {
  return JSON.stringify(value).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** Denials stand out in a SIEM's severity filter; everything else is informational. */
function severity(e: SiemEvent): number {
  const d = e.data;
  return d.decision === "deny" || d.status === "denied" || d.outcome === "denied" ? SEVERITY_NOTICE : SEVERITY_INFO;
}

export function structuredData(e: SiemEvent): string {
  const params: Array<[string, string | null]> = [
    ["event_id", e.id],
    ["session", sessionOf(e)],
    ["subject", subjectOf(e)],
  ];
  const body = params.filter((p): p is [string, string] => p[1] !== null).map(([k, v]) => ` ${k}="${escapeParamValue(v)}"`).join("");
  return `[${SD_ID}${body}]`;
}

/** One RFC 5424 message (without framing). */
export function formatMessage(e: SiemEvent, h: SyslogHeader): string {
  const pri = FACILITY_LOG_AUDIT * 8 + severity(e);
  return `<${pri}>1 ${e.time} ${headerField(h.hostname, 255)} ${APP_NAME} ${headerField(h.procId, 128)} ${headerField(e.type, 32)} ${structuredData(e)} ${asciiJson(e.data)}`;
}

/** RFC 6587 octet counting: MSG-LEN (bytes, not characters) SP message. */
export function frame(message: string): Buffer {
  const body = Buffer.from(message, "utf8");
  return Buffer.concat([Buffer.from(`${body.length} `, "ascii"), body]);
}

/**
 * Splits octet-counted frames off the front of `buf` (receivers and tests):
 * the complete messages, and what is left over for the next chunk.
 */
export function parseFrames(buf: Buffer): { messages: string[]; rest: Buffer } {
  const messages: string[] = [];
  let at = 0;
  for (;;) {
    const sp = buf.indexOf(0x20, at);
    if (sp < 0) break;
    const lenText = buf.subarray(at, sp).toString("ascii");
    if (!/^[1-9][0-9]{0,8}$/.test(lenText)) throw new Error(`bad octet count ${JSON.stringify(lenText.slice(0, 12))}`);
    const end = sp + 1 + Number(lenText);
    if (end > buf.length) break;
    messages.push(buf.subarray(sp + 1, end).toString("utf8"));
    at = end;
  }
  return { messages, rest: buf.subarray(at) };
}
