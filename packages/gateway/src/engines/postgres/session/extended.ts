// Client -> server for the extended protocol (Parse, Bind, Describe, Execute,
// Close): each statement is checked at Parse, recorded at Execute. A denied one
// is swapped for a message that fails on the server in the same position, so the
// server skips to Sync and keeps transaction state as after its own error. One
// that needs a review is prepared and bound as the server's unnamed statement and
// portal (unnamed.ts) and held at Execute (hold-extended.ts).
import type { StatementFacts } from "../analysis/types.js";
import { checkFacts, checkSql, denialMessage, type Verdict } from "../guard.js";
import { buildErrorResponse, writeFrontend, type Bind, type Close, type Describe, type Execute, type FrontendMessage, type Parse } from "../protocol/index.js";
import type { ClientIo } from "./client-side.js";
import { onlyReviews } from "./hold.js";
import { approvedVerdict, failInPlace, holdPortal, portalGoneError, reviewParams, type PortalReview } from "./hold-extended.js";
import type { Denial } from "./pending.js";
import { DENIED_STATEMENT, DENIED_SUBSTITUTE, runOf, startOf, type PortalInfo, type PreparedInfo, type SessionState } from "./state.js";
import { boundUnnamed, parsedUnnamed, portalGone, serverPortal, serverStatement } from "./unnamed.js";

export function denialOf(v: Verdict): Denial {
  const d = denialMessage(v);
  return { error: buildErrorResponse("ERROR", d.sqlstate, d.message, d.detail, d.hint) };
}

export async function recordDenial(s: SessionState, v: Verdict, io: ClientIo): Promise<void> {
  io.flush();
  s.denied++;
  await s.sink.record([startOf(s.sessionId, ++s.seq, v, "denied")]);
  s.log.info({ decision: v.decision, rule: v.policyIds, text: v.text.slice(0, 200) }, "statement denied");
}

/** Forwards `m` as it came, or rebuilt when the gateway renamed what it refers to (unnamed.ts). */
function forward(io: ClientIo, raw: Buffer, m: FrontendMessage, renamed: boolean): void {
  io.toServer(renamed ? writeFrontend(m) : raw);
}

/**
 * Parse runs nothing: a statement whose only objections are reviews is prepared now (as the
 * server's unnamed statement, unnamed.ts) and held at its Execute (hold-extended.ts).
 */
export function parse(s: SessionState, m: Parse, raw: Buffer, io: ClientIo): Promise<void> | void {
  const verdicts = checkSql(s.policy.current().engine, s.scope, m.query);
  const bad = verdicts.find((v) => v.decision !== "allow");
  const held = bad !== undefined && s.reviews !== null && onlyReviews(verdicts);
  if (bad && !held) {
    s.statements.delete(m.name);
    return recordDenial(s, bad, io).then(() => {
      io.toServer(writeFrontend({ type: "Parse", name: m.name, query: DENIED_SUBSTITUTE, paramTypes: [] }));
      if (m.name === "") parsedUnnamed(s, null);
      s.expect({ t: "parse", denial: denialOf(bad) });
    });
  }
  const info: PreparedInfo = { verdict: bad ?? verdicts[0] ?? null, text: m.query, fields: null };
  if (held || m.name === "") info.unnamed = { paramTypes: m.paramTypes };
  s.statements.set(m.name, info);
  const send = () => {
    forward(io, raw, { ...m, name: info.unnamed ? "" : m.name }, info.unnamed !== undefined && m.name !== "");
    if (info.unnamed) parsedUnnamed(s, info);
    s.expect({ t: "parse", denial: null });
  };
  const lookup = s.prepareColumns(verdicts);
  if (!lookup) return send();
  io.flush();
  return lookup.then(send);
}

export function describe(s: SessionState, m: Describe, raw: Buffer, io: ClientIo): void {
  const portal = m.kind === "P" ? (s.portals.get(m.name) ?? null) : null;
  const stmt = m.kind === "S" ? (s.statements.get(m.name) ?? null) : null;
  if (portal && portalGone(s, portal)) return failInPlace(s, io, portalGoneError(m.name));
  // Once a held statement used the unnamed slots, an unnamed portal the gateway does not track may be it.
  if (m.kind === "P" && m.name === "" && !portal && s.unnamed.used) return failInPlace(s, io, portalGoneError(""));
  if (portal) portal.described = true;
  const name = stmt ? serverStatement(s, io, m.name, stmt) : serverPortal(m.name, portal);
  forward(io, raw, { ...m, name }, name !== m.name);
  s.expect({ t: "describe", kind: m.kind, internal: false, portal, stmt });
}

export function close(s: SessionState, m: Close, raw: Buffer, io: ClientIo): void {
  let name = m.name;
  if (m.kind === "S") {
    const info = s.statements.get(m.name);
    s.statements.delete(m.name);
    if (m.name === "" || (info?.unnamed && s.unnamed.stmt === info)) {
      name = "";
      parsedUnnamed(s, null);
    }
  } else {
    const info = s.portals.get(m.name);
    s.portals.delete(m.name);
    if (m.name === "" || (info?.unnamed && s.unnamed.portal === info)) {
      name = "";
      boundUnnamed(s, null);
    }
  }
  forward(io, raw, { ...m, name }, name !== m.name);
  s.expect({ t: "close" });
}

/**
 * A statement the gateway saw no Parse for was made by SQL PREPARE (checked then as what it
 * wraps): binding it is checked and recorded as an EXECUTE of it. A denied Bind is replaced by
 * one of a statement that cannot exist, so the server fails it and skips to Sync as usual.
 * Binding a statement that needs a review keeps its parameter values for the review.
 */
export function bind(s: SessionState, m: Bind, raw: Buffer, io: ClientIo): Promise<void> | void {
  let stmt = s.statements.get(m.statement) ?? null;
  const deny = (v: Verdict, denial: Denial) => {
    s.portals.delete(m.portal);
    return recordDenial(s, v, io).then(() => {
      io.toServer(writeFrontend({ type: "Bind", portal: m.portal, statement: DENIED_STATEMENT, paramFormats: [], params: [], resultFormats: [] }));
      if (m.portal === "") boundUnnamed(s, null);
      s.expect({ t: "bind", denial });
    });
  };
  // SQL PREPARE cannot make the unnamed statement and every protocol Parse of it is tracked: an untracked
  // one is nothing the client made (possibly a held statement in the slot), so it is refused, never bound.
  if (!stmt && m.statement === "") {
    s.portals.delete(m.portal);
    if (m.portal === "") boundUnnamed(s, null);
    return failInPlace(s, io, buildErrorResponse("ERROR", "26000", 'unnamed prepared statement does not exist', "airlock: the unnamed statement this Bind names was not parsed (or was refused) in this session"));
  }
  if (!stmt) {
    const text = `EXECUTE ${m.statement} -- protocol Bind of a statement prepared with SQL PREPARE`;
    const facts: StatementFacts = { kind: "execute", command: "EXECUTE", reads: [], writes: [], functions: [], hasWhere: undefined, risky: ["execute_prepared"], text, parameterCount: 0, dml: [] };
    const v = checkFacts(s.policy.current().engine, s.scope, facts);
    if (v.decision !== "allow") return deny(v, denialOf(v));
    stmt = { verdict: v, text, fields: null };
  }
  let review: PortalReview | null = null;
  if (stmt.verdict?.decision === "review") {
    const params = reviewParams(m);
    if ("refused" in params) {
      const v = { ...stmt.verdict, reasons: [...stmt.verdict.reasons, params.refused] };
      return deny(v, { error: buildErrorResponse("ERROR", "42501", params.refused, undefined, "Pass large values another way (e.g. a table the statement reads), or ask for the statement to be allowed.") });
    }
    review = { params, approved: null };
  }
  const statement = serverStatement(s, io, m.statement, stmt);
  const info: PortalInfo = { stmt, resultFormats: m.resultFormats, fields: null, described: false, run: null, unnamed: m.portal === "" || review !== null, review };
  s.portals.set(m.portal, info);
  const portal = serverPortal(m.portal, info);
  if (info.unnamed) boundUnnamed(s, info);
  forward(io, raw, { ...m, statement, portal }, statement !== m.statement || portal !== m.portal);
  s.expect({ t: "bind" });
}

export async function execute(s: SessionState, m: Execute, raw: Buffer, io: ClientIo): Promise<void> {
  const portal = s.portals.get(m.portal);
  // Once a held statement used the unnamed slots, executing an unnamed portal the gateway does not
  // track could run it without its review: refused as PostgreSQL refuses a missing portal.
  if (m.portal === "" && !portal && s.unnamed.used) return failInPlace(s, io, portalGoneError(""));
  if (portal && portalGone(s, portal)) {
    s.finish(portal.run, { status: "error", errorCode: "34000", error: "portal replaced" });
    portal.run = null;
    return failInPlace(s, io, portalGoneError(m.portal));
  }
  let run = portal?.run ?? null;
  if (portal && !run) {
    let v = portal.stmt?.verdict;
    // Not held when the server is already skipping to Sync (an earlier error): it will not run.
    if (v?.decision === "review" && !s.skipping) {
      const approved = portal.review?.approved;
      const ok = approved ? approvedVerdict(v, approved) : await holdPortal(s, portal, io);
      if (!ok) return;
      v = ok;
    }
    if (v) {
      io.flush();
      const [id] = await s.sink.record([startOf(s.sessionId, ++s.seq, v, "pending")]);
      run = runOf(id!);
      portal.run = run;
    }
  }
  const name = serverPortal(m.portal, portal ?? null);
  // Masking needs the result's columns; Execute's rows come without a RowDescription, so
  // ask for the portal's description first unless the client already did.
  if (portal && !portal.fields && !portal.described) {
    io.toServer(writeFrontend({ type: "Describe", kind: "P", name }));
    s.expect({ t: "describe", kind: "P", internal: true, portal, stmt: null });
  }
  forward(io, raw, { ...m, portal: name }, name !== m.portal);
  s.expect({ t: "execute", portal: portal ?? null, run, plan: null, copyOut: null });
}
