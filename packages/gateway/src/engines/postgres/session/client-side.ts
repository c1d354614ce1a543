// Client -> server: every statement is checked and recorded before its bytes
// are forwarded. Denied statements are swapped for DENIED_SUBSTITUTE in the same
// position so the server's own error handling keeps transaction state and
// pipelines exactly as if the statement had failed there.
import type { StatementFacts } from "../analysis/types.js";
import { checkFacts, checkSql, denialMessage, type Verdict } from "../guard.js";
import { buildErrorResponse, writeFrontend, type FrontendMessage } from "../protocol/index.js";
import { planCopies } from "./copy-out.js";
import { holdForReview, onlyReviews } from "./hold.js";
import type { Denial, Run } from "./pending.js";
import { DENIED_STATEMENT, DENIED_SUBSTITUTE, runOf, startOf, type SessionState } from "./state.js";

export interface ClientIo {
  toServer(buf: Buffer): void;
  /** Writes to the client directly (a NoticeResponse while a statement is held). */
  toClient(buf: Buffer): void;
  /** Sends what is queued; called before anything is awaited. */
  flush(): void;
}

function denialOf(v: Verdict): Denial {
  const d = denialMessage(v);
  return { error: buildErrorResponse("ERROR", d.sqlstate, d.message, d.detail, d.hint) };
}

/** Handles one client message; returns a promise only when it had to wait (statement recording). */
export function handleClient(s: SessionState, m: FrontendMessage, raw: Buffer, io: ClientIo): Promise<void> | void {
  switch (m.type) {
    case "Query":
      return simpleQuery(s, m.query, raw, io);
    case "Parse": {
      const policy = s.policy.current();
      const verdicts = checkSql(policy.engine, s.scope, m.query);
      const bad = verdicts.find((v) => v.decision !== "allow");
      if (bad) {
        s.statements.delete(m.name);
        return recordDenial(s, bad, io).then(() => {
          io.toServer(writeFrontend({ type: "Parse", name: m.name, query: DENIED_SUBSTITUTE, paramTypes: [] }));
          s.expect({ t: "parse", denial: denialOf(bad) });
        });
      }
      s.statements.set(m.name, { verdict: verdicts[0] ?? null, text: m.query, fields: null });
      const lookup = s.prepareColumns(verdicts);
      if (lookup) {
        io.flush();
        return lookup.then(() => {
          io.toServer(raw);
          s.expect({ t: "parse", denial: null });
        });
      }
      io.toServer(raw);
      s.expect({ t: "parse", denial: null });
      return;
    }
    case "Bind":
      return bind(s, m.portal, m.statement, m.resultFormats, raw, io);
    case "Describe":
      const portal = m.kind === "P" ? (s.portals.get(m.name) ?? null) : null;
      if (portal) portal.described = true;
      io.toServer(raw);
      s.expect({ t: "describe", kind: m.kind, internal: false, portal, stmt: m.kind === "S" ? (s.statements.get(m.name) ?? null) : null });
      return;
    case "Execute":
      return execute(s, m.portal, raw, io);
    case "Close":
      if (m.kind === "S") s.statements.delete(m.name);
      else s.portals.delete(m.name);
      io.toServer(raw);
      s.expect({ t: "close" });
      return;
    case "Sync":
      io.toServer(raw);
      s.expect({ t: "sync" });
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

async function recordDenial(s: SessionState, v: Verdict, io: ClientIo): Promise<void> {
  io.flush();
  s.denied++;
  await s.sink.record([startOf(s.sessionId, ++s.seq, v, "denied")]);
  s.log.info({ decision: v.decision, rule: v.policyIds, text: v.text.slice(0, 200) }, "statement denied");
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

/**
 * A statement the gateway saw no Parse for was made by SQL PREPARE (checked then as what it
 * wraps): binding it is checked and recorded as an EXECUTE of it. A denied Bind is replaced by
 * one of a statement that cannot exist, so the server fails it and skips to Sync as usual.
 */
function bind(s: SessionState, portal: string, statement: string, resultFormats: number[], raw: Buffer, io: ClientIo): Promise<void> | void {
  let stmt = s.statements.get(statement) ?? null;
  if (!stmt) {
    const text = `EXECUTE ${statement} -- protocol Bind of a statement prepared with SQL PREPARE`;
    const facts: StatementFacts = { kind: "execute", command: "EXECUTE", reads: [], writes: [], functions: [], hasWhere: undefined, risky: ["execute_prepared"], text, parameterCount: 0, dml: [] };
    const v = checkFacts(s.policy.current().engine, s.scope, facts);
    if (v.decision !== "allow") {
      s.portals.delete(portal);
      return recordDenial(s, v, io).then(() => {
        io.toServer(writeFrontend({ type: "Bind", portal, statement: DENIED_STATEMENT, paramFormats: [], params: [], resultFormats: [] }));
        s.expect({ t: "bind", denial: denialOf(v) });
      });
    }
    stmt = { verdict: v, text, fields: null };
  }
  s.portals.set(portal, { stmt, resultFormats, fields: null, described: false, run: null });
  io.toServer(raw);
  s.expect({ t: "bind" });
}

async function execute(s: SessionState, portalName: string, raw: Buffer, io: ClientIo): Promise<void> {
  const portal = s.portals.get(portalName);
  let run = portal?.run ?? null;
  if (portal && !run) {
    const v = portal.stmt?.verdict;
    if (v) {
      io.flush();
      const [id] = await s.sink.record([startOf(s.sessionId, ++s.seq, v, "pending")]);
      run = runOf(id!);
      portal.run = run;
    }
  }
  // Masking needs the result's columns; Execute's rows come without a RowDescription, so
  // ask for the portal's description first unless the client already did.
  if (portal && !portal.fields && !portal.described) {
    io.toServer(writeFrontend({ type: "Describe", kind: "P", name: portalName }));
    s.expect({ t: "describe", kind: "P", internal: true, portal, stmt: null });
  }
  io.toServer(raw);
  s.expect({ t: "execute", portal: portal ?? null, run, plan: null, copyOut: null });
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
    s.expect({ t: "query", runs: [], i: 0, denial: denialOf(v), plan: null, copyOut: null });
    return;
  }
  const [id] = await s.sink.record([startOf(s.sessionId, ++s.seq, v, "pending")]);
  io.toServer(raw);
  s.expect({ t: "fcall", run: runOf(id!) });
}
