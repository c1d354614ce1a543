// Server -> client: match each response to what the client asked (pending.ts),
// mask result rows, COPY data and message texts, complete statement records,
// replace the substitute's error with the denial, and swallow answers to the
// gateway's own injected messages.
import { ErrorField, writeBackend, type BackendMessage, type ErrorResponse, type NoticeResponse } from "../protocol/index.js";
import { maskRow, planColumns, type ColumnPlan } from "./columns.js";
import { copyOutSpec, copyOutState, maskCopyData } from "./copy-out.js";
import { rowsFromTag, type Expect } from "./pending.js";
import { errorFrame, type SessionState } from "./state.js";

export class TargetProtocolError extends Error {
  override readonly name = "TargetProtocolError";
}

const TEXT_FIELDS = [ErrorField.Message, ErrorField.Detail, ErrorField.Hint, ErrorField.Where, ErrorField.InternalQuery];

/** Masks data the server echoes in messages (e.g. "Key (email)=(a@b.c) already exists"). */
function maskFields<T extends ErrorResponse | NoticeResponse>(s: SessionState, msg: T): T | null {
  const content = s.content();
  if (!content) return null;
  let changed = false;
  const fields = { ...msg.fields };
  for (const f of TEXT_FIELDS) {
    const v = fields[f];
    if (v === undefined) continue;
    const out = content.maskText(v);
    if (out !== v) {
      fields[f] = out;
      changed = true;
    }
  }
  return changed ? { ...msg, fields } : null;
}

function planFor(s: SessionState, head: Expect & { plan: ColumnPlan | null }, fields: Parameters<typeof planColumns>[0]): ColumnPlan {
  head.plan = planColumns(fields, s.policy.current().masker, s.groups, s.columnName);
  return head.plan;
}

/** Handles one server message; `out` queues bytes for the client. */
export function handleServer(s: SessionState, m: BackendMessage, raw: Buffer, out: (b: Buffer) => void): void {
  const head = s.pending[0];
  const send = (b: Buffer) => {
    if (!s.refusing) out(b);
  };
  switch (m.type) {
    case "ParseComplete":
    case "BindComplete":
    case "CloseComplete":
      s.pending.shift();
      if (head?.t === "parse" && (head.internal || head.silent)) return;
      return send(raw);
    case "ParameterDescription":
      if (head?.t === "describe" && head.internal) return;
      return send(raw);
    case "RowDescription": {
      if (head?.t === "describe") {
        s.pending.shift();
        if (head.portal) head.portal.fields = m.fields;
        if (head.stmt) head.stmt.fields = m.fields;
        if (!head.internal) send(raw);
        return;
      }
      if (head?.t === "query") {
        const plan = planFor(s, head, m.fields);
        if (plan.refuse) return refuse(s, out, head.runs[head.i] ?? null, plan.refuse);
      }
      return send(raw);
    }
    case "NoData":
      if (head?.t === "describe") {
        s.pending.shift();
        if (head.portal) head.portal.fields = [];
        if (head.stmt) head.stmt.fields = [];
        if (!head.internal) send(raw);
        return;
      }
      return send(raw);
    case "DataRow": {
      if (s.refusing) return;
      let plan: ColumnPlan | null = null;
      let run = null;
      if (head?.t === "query") {
        plan = head.plan;
        run = head.runs[head.i] ?? null;
      } else if (head?.t === "execute") {
        if (!head.plan) {
          const fields = head.portal?.fields;
          const p = fields ? planFor(s, head, fields) : null;
          if (p?.refuse) return refuse(s, out, head.run, p.refuse);
        }
        plan = head.plan;
        run = head.run;
      }
      if (run) run.rows++;
      if (!plan) {
        // Rows whose columns we could not learn are never passed unmasked.
        return refuse(s, out, run, null);
      }
      if (plan.passthrough) return send(raw);
      const n = maskRow(m.values, plan);
      if (typeof n !== "number") return refuse(s, out, run, n.refuse);
      if (n === 0) return send(raw);
      if (run) run.masked += n;
      s.masked += n;
      return send(writeBackend(m));
    }
    case "CommandComplete":
    case "EmptyQueryResponse": {
      const tag = m.type === "CommandComplete" ? m.tag : "";
      if (head?.t === "query") {
        const run = head.runs[head.i++] ?? null;
        if (head.copyOut?.refused) {
          const why = head.copyOut.refused;
          head.copyOut = null;
          return copyRefused(s, out, run, why);
        }
        s.finish(run, { status: "ok", rows: rowsFromTag(tag) ?? run?.rows ?? 0, commandTag: tag || null });
        head.plan = null;
        head.copyOut = null;
      } else if (head?.t === "execute") {
        s.pending.shift();
        if (head.portal) head.portal.run = null;
        if (head.copyOut?.refused) return copyRefused(s, out, head.run, head.copyOut.refused);
        s.finish(head.run, { status: "ok", rows: rowsFromTag(tag) ?? head.run?.rows ?? 0, commandTag: tag || null });
      }
      return send(raw);
    }
    case "PortalSuspended":
      if (head?.t === "execute") s.pending.shift(); // the run continues with the next Execute
      return send(raw);
    case "CopyInResponse":
      return send(raw);
    case "CopyOutResponse": {
      if (head?.t === "query") head.copyOut = copyOutState(s, m, head.copies?.[head.i] ?? null);
      else if (head?.t === "execute") {
        // Extended protocol: the statement text gives the format; the columns are not described.
        const text = head.portal?.stmt?.text;
        const spec = text ? copyOutSpec(text) : null;
        head.copyOut = copyOutState(s, m, spec ? { spec, columns: null } : null);
      } else throw new TargetProtocolError("server sent CopyOutResponse for no statement");
      return send(raw);
    }
    case "CopyData": {
      const copy = head?.t === "query" || head?.t === "execute" ? head.copyOut : null;
      if (!copy) throw new TargetProtocolError("server sent CopyData outside COPY OUT");
      if (copy.refused) return; // never forwarded: the statement fails at its end
      const r = maskCopyData(copy, m.data);
      if (r.masked === 0) return send(raw);
      s.masked += r.masked;
      const run = head?.t === "query" ? head.runs[head.i] : head?.t === "execute" ? head.run : null;
      if (run) run.masked += r.masked;
      return send(writeBackend({ type: "CopyData", data: r.data }));
    }
    case "CopyDone":
      if ((head?.t === "query" || head?.t === "execute") && head.copyOut?.refused) return;
      return send(raw);
    case "ErrorResponse":
      return onError(s, m, raw, out);
    case "ReadyForQuery":
      if (head && (head.t === "sync" || head.t === "query" || head.t === "fcall")) s.pending.shift();
      // Unasked-for, it would be taken by the client as the end of its next request.
      else throw new TargetProtocolError(head ? `server sent ReadyForQuery while ${head.t} was pending` : "server sent ReadyForQuery unasked");
      s.status = m.status;
      if (head?.t === "sync" && head.internal) return;
      s.refusing = false;
      return out(raw);
    case "FunctionCallResponse":
      if (head?.t === "fcall") s.finish(head.run, { status: "ok", rows: null });
      return send(raw);
    case "NoticeResponse": {
      const masked = maskFields(s, m);
      return out(masked ? writeBackend(masked) : raw);
    }
    case "NotificationResponse": {
      // NOTIFY payloads are data (often a row's key or a JSON copy of it): content-masked like message texts.
      const payload = s.content()?.maskText(m.payload) ?? m.payload;
      return out(payload === m.payload ? raw : writeBackend({ ...m, payload }));
    }
    case "ParameterStatus":
      return out(raw);
    default:
      throw new TargetProtocolError(`server sent ${m.type} during the session`);
  }
}

function onError(s: SessionState, m: ErrorResponse, raw: Buffer, out: (b: Buffer) => void): void {
  const head = s.pending[0];
  const message = m.fields[ErrorField.Message] ?? "";
  const code = m.fields[ErrorField.Code] ?? null;
  let frame: Buffer | null = null;
  if ((head?.t === "parse" && head.internal) || (head?.t === "describe" && head.internal && head.kind === "S")) {
    // The gateway's own describe of a COPY's columns failed: the COPY is refused when it runs.
    s.dropUntilSync();
    return;
  }
  if (head?.t === "query") {
    if (head.denial && head.i === head.runs.length) frame = writeBackend(head.denial.error);
    else s.finish(head.runs[head.i] ?? null, { status: "error", errorCode: code, error: message });
    // Statements after a failed one in the same string are not run.
    for (const r of head.runs.slice(head.i + 1)) s.finish(r, { status: "skipped" });
    head.i = head.runs.length + 1;
  } else if (head?.t === "fcall") {
    s.finish(head.run, { status: "error", errorCode: code, error: message });
  } else if (head) {
    if ((head.t === "parse" || head.t === "bind") && head.denial) frame = writeBackend(head.denial.error);
    if (head.t === "execute") {
      s.finish(head.run, { status: "error", errorCode: code, error: message });
      if (head.portal) head.portal.run = null;
    }
    s.dropUntilSync();
  }
  if (s.refusing) return; // our own error already went out for this cycle
  if (frame) return out(frame);
  const masked = maskFields(s, m);
  out(masked ? writeBackend(masked) : raw);
}

/** Ends a result the gateway will not serve (binary values under a column rule, unknown columns). */
function refuse(s: SessionState, out: (b: Buffer) => void, run: { id: string } | null, column: string | null): void {
  if (s.refusing) return;
  const msg =
    column === null
      ? "airlock: rows arrived for a result whose columns are unknown, so they cannot be masked; refused"
      : `airlock: column ${column} is masked and cannot be sent in binary format; request text format for it`;
  out(errorFrame("0A000", msg, undefined, column === null ? undefined : "Masked values are only served as text (result format 0)."));
  s.refusing = true;
  if (run) s.finish(run as never, { status: "error", errorCode: "MASKING_UNSUPPORTED", error: msg });
  // The server carries on and later answers the rest of this cycle: drop all of it up to ReadyForQuery.
}

function copyRefused(s: SessionState, out: (b: Buffer) => void, run: { id: string } | null, why: string): void {
  const msg = `airlock: ${why}`;
  out(errorFrame("0A000", msg));
  s.refusing = true;
  if (run) s.finish(run as never, { status: "error", errorCode: "MASKING_UNSUPPORTED", error: msg });
}
