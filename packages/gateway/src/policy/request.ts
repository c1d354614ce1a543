// Translates the engine's friendly PolicyRequest into Cedar JSON (entities +
// context). Entities are built per request: the gateway has the principal's
// groups and the connection's labels at hand, so no entity store is needed.
import type { CedarValueJson, EntityJson, EntityUidJson } from "@cedar-policy/cedar-wasm/nodejs";
import { ACTIONS, type PolicyRequest } from "./types.js";

const NS = "Airlock";
const uid = (type: string, id: string): EntityUidJson => ({ type: `${NS}::${type}`, id });

export interface CedarRequest {
  principal: EntityUidJson;
  action: EntityUidJson;
  resource: EntityUidJson;
  context: Record<string, CedarValueJson>;
  entities: EntityJson[];
}

function labelSet(labels: PolicyRequest["resource"]["labels"]): string[] {
  if (!labels) return [];
  if (Array.isArray(labels)) return [...labels];
  return Object.entries(labels).map(([k, v]) => `${k}=${v}`);
}

function timeOf(t: NonNullable<PolicyRequest["context"]>["time"]): { hour: number; weekday: number } {
  if (t !== undefined && typeof t !== "string") return t;
  const d = t === undefined ? new Date() : new Date(t);
  if (Number.isNaN(d.getTime())) throw new Error(`invalid time ${JSON.stringify(t)}`);
  return { hour: d.getUTCHours(), weekday: d.getUTCDay() };
}

/** Throws on malformed requests; the engine turns that into a deny. */
export function toCedarRequest(req: PolicyRequest): CedarRequest {
  if (!ACTIONS.includes(req.action)) throw new Error(`unknown action ${JSON.stringify(req.action)}`);
  const { principal: p, resource: r } = req;
  if (p.type !== "User" && p.type !== "ServiceAccount") throw new Error(`unknown principal type ${JSON.stringify(p.type)}`);
  const ctx = req.context ?? {};
  const labels = labelSet(r.labels);

  const entities: EntityJson[] = [];
  const groups = (p.groups ?? []).map((g) => uid("Group", g));
  const principal = uid(p.type, p.id);
  entities.push({ uid: principal, attrs: {}, parents: groups });
  for (const g of groups) entities.push({ uid: g, attrs: {}, parents: [] });

  // Resource chain Connection > Database > Schema > Table; ids are path-joined
  // so equally named tables on different connections never collide.
  let resource = uid("Connection", r.connection);
  entities.push({ uid: resource, attrs: { labels, type: r.connectionType ?? "" }, parents: [] });
  const levels: Array<["Database" | "Schema" | "Table", string | undefined]> = [
    ["Database", r.database], ["Schema", r.schema], ["Table", r.table],
  ];
  let path = r.connection;
  let missing: string | undefined;
  for (const [type, name] of levels) {
    if (name === undefined) { missing ??= type; continue; }
    if (missing) throw new Error(`resource ${type} given without ${missing}`);
    path = `${path}/${name}`;
    const child = uid(type, path);
    entities.push({ uid: child, attrs: { name }, parents: [resource] });
    resource = child;
  }

  const s = ctx.statement ?? {};
  const context: Record<string, CedarValueJson> = {
    env: ctx.env ?? labels.find((l) => l.startsWith("env="))?.slice(4) ?? "",
    labels,
    time: timeOf(ctx.time),
    statement: {
      kind: s.kind ?? (req.action === "connect" ? "" : req.action),
      hasWhere: s.hasWhere ?? false,
      risky: s.risky ?? [],
      tables: s.tables ?? [],
    },
  };
  if (ctx.clientAddr !== undefined) context.clientAddr = { __extn: { fn: "ip", arg: ctx.clientAddr } };

  return { principal, action: uid("Action", req.action), resource, context, entities };
}
