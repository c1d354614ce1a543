// Client -> server: every statement is checked and recorded before its bytes
// are forwarded. Denied statements are swapped for DENIED_SUBSTITUTE in the same
// position so the server's own error handling keeps transaction state and
// pipelines exactly as if the statement had failed there. Simple Query and
// FunctionCall here; the extended protocol in extended.ts.
import { checkFacts, checkSql } from "../guard.js";
import { writeFrontend, type FrontendMessage } from "../protocol/index.js";
import { planCopies } from "./copy-out.js";
import { bind, close, denialOf, describe, execute, parse, recordDenial } from "./extended.js";
import { holdForReview, onlyReviews } from "./hold.js";
import type { Run } from "./pending.js";
import { DENIED_SUBSTITUTE, runOf, startOf, type SessionState } from "./state.js";
import { queryForgetsUnnamed } from "./unnamed.js";

export interface ClientIo {
  toServer(buf: Buffer): void;
  /** Writes to the client directly (a NoticeResponse while a statement is held). */
  toClient(buf: Buffer): void;
  /** Sends what is queued; called before anything is awaited. */
  flush(): void;
}

/** Handles one client message; returns a promise only when it had to wait (statement recording). */
export function handleClient(s: SessionState, m: FrontendMessage, raw: Buffer, io: ClientIo): Promise<void> | void {
  switch (m.type) {
    case "Query":
      queryForgetsUnnamed(s);
      return simpleQuery(s, m.query, raw, io);
    case "Parse":
      return parse(s, m, raw, io);
    case "Bind":
      return bind(s, m, raw, io);
    case "Describe":
      return describe(s, m, raw, io);
    case "Execute":
      return execute(s, m, raw, io);
    case "Close":
      return close(s, m, raw, io);
    case "Sync":
      io.toServer(raw);
      s.expect({ t: "sync" });
      s.unnamed.cycle++;
      return;
    case "FunctionCall":
      return functionCall(s, m.functionOid, raw, io);
    case "Flush":
    case "CopyData":
    case "CopyDone":
    case "CopyFail":
    case "Terminate":
      io.toServer(raw);
      return;
    default:
      // Startup-phase and authentication messages cannot appear once the session runs.
      throw Object.assign(new Error(`unexpected ${m.type} during the session`), { sqlstate: "08P01" });
  }
}

async function simpleQuery(s: SessionState, sql: string, raw: Buffer, io: ClientIo): Promise<void> {
  const policy = s.policy.current();
  let verdicts = checkSql(policy.engine, s.scope, sql);
  if (s.reviews && onlyReviews(verdicts)) {
    io.flush();
    const held = await holdForReview(s, sql, verdicts, io.toClient);
    if (held.approved) {
      // Approved: the exact text runs as if nothing happened; the records keep decision "review".
      verdicts = verdicts.map((v) => (v.decision === "review" ? { ...v, reasons: [...v.reasons, `approved in review ${held.reviewId}`], approved: true } : v));
    } else {
      const k = verdicts.findIndex((v) => v.decision === "review");
      const starts = [...verdicts.slice(0, k).map((v) => startOf(s.sessionId, ++s.seq, v, "skipped")), startOf(s.sessionId, ++s.seq, { ...verdicts[k]!, reasons: [...verdicts[k]!.reasons, held.reason] }, "denied"), ...verdicts.slice(k + 1).map((v) => startOf(s.sessionId, ++s.seq, v, "skipped"))];
      s.denied++;
      await s.sink.record(starts);
      // Nothing of the query ran: the substitute fails in its place so the transaction state is what PostgreSQL makes of an error.
      io.toServer(writeFrontend({ type: "Query", query: DENIED_SUBSTITUTE }));
      s.expect({ t: "query", runs: [], i: 0, denial: held.denial, plan: null, copyOut: null });
      return;
    }
  }
  const k = verdicts.findIndex((v) => v.decision !== "allow" && !v.approved);
  // Everything before a denied statement runs (as PostgreSQL would run it before failing on
  // the denied one); the denied one and everything after it never reach the server.
  const forwarded = k < 0 ? verdicts : verdicts.slice(0, k);
  const starts = forwarded.map((v) => startOf(s.sessionId, ++s.seq, v, "pending"));
  if (k >= 0) {
    starts.push(startOf(s.sessionId, ++s.seq, verdicts[k]!, "denied"));
    for (const v of verdicts.slice(k + 1)) starts.push(startOf(s.sessionId, ++s.seq, v, "skipped"));
    s.denied++;
    s.log.info({ decision: verdicts[k]!.decision, rule: verdicts[k]!.policyIds, text: verdicts[k]!.text.slice(0, 200) }, "statement denied");
  }
  io.flush();
  const ids = starts.length ? await s.sink.record(starts) : [];
  await s.prepareColumns(forwarded);
  const runs: Run[] = forwarded.map((_, i) => runOf(ids[i]!));
  const copies = planCopies(s, forwarded.map((v) => v.text), io.toServer);
  if (k < 0) {
    io.toServer(raw);
    s.expect({ t: "query", runs, i: 0, denial: null, plan: null, copyOut: null, copies });
    return;
  }
  // Re-send only the analysed texts: the prefix exactly as checked, then the substitute.
  // "\n;" so a trailing line comment in a statement cannot swallow the separator.
  const text = [...forwarded.map((v) => v.text), DENIED_SUBSTITUTE].join("\n;\n");
  io.toServer(writeFrontend({ type: "Query", query: text }));
  s.expect({ t: "query", runs, i: 0, denial: denialOf(verdicts[k]!), plan: null, copyOut: null, copies });
}

async function functionCall(s: SessionState, oid: number, raw: Buffer, io: ClientIo): Promise<void> {
  // Fast-path calls name a function by OID only: checked as a risky "call".
  const facts = {
    kind: "call" as const, command: "FUNCTION CALL", reads: [], writes: [], functions: [`oid:${oid}`],
    hasWhere: undefined, risky: ["fastpath_call"] as never[], text: `-- fast-path function call, oid ${oid}`, parameterCount: 0, dml: [],
  };
  const v = checkFacts(s.policy.current().engine, s.scope, facts);
  io.flush();
  if (v.decision !== "allow") {
    await recordDenial(s, v, io);
    io.toServer(writeFrontend({ type: "Query", query: DENIED_SUBSTITUTE }));
    queryForgetsUnnamed(s);
    s.expect({ t: "query", runs: [], i: 0, denial: denialOf(v), plan: null, copyOut: null });
    return;
  }
  const [id] = await s.sink.record([startOf(s.sessionId, ++s.seq, v, "pending")]);
  io.toServer(raw);
  s.expect({ t: "fcall", run: runOf(id!) });
}
