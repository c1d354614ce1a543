/**
 * Recognises WHERE clauses that are constant TRUE, so "DELETE ... WHERE 1=1"
 * is treated like a DELETE with no WHERE at all.
 *
 * Recognised (anything else counts as a real WHERE):
 *  - TRUE literal
 *  - a string literal Postgres' boolin accepts as true, bare or cast to bool/boolean:
 *    't','tr','tru','true','y','ye','yes','on','1' (case-insensitive, trimmed)
 *  - the integer/float literal 1 cast to bool (`1::bool`)
 *  - `<literal> = <literal>` with identical literals (1=1, 'a'='a'), and
 *    `<literal> <> <literal>` / `!=` with different literals of the same type (1<>2)
 *  - NOT of a constant FALSE literal (`NOT false`)
 *  - `a OR b` where any arm is recognised; `a AND b` where all arms are
 *  - `x IS NOT NULL` / `IS TRUE` wrappers around recognised literals
 * Not recognised (heuristic, by design a short list): `1 < 2`, `id = id`,
 * `coalesce(true)`, `(SELECT true)`, functions, '1' = 1 (different literal types).
 */
type Json = Record<string, unknown>;

const TRUE_STRINGS = new Set(["t", "tr", "tru", "true", "y", "ye", "yes", "on", "1"]);

function unwrap(node: unknown): [string, Json] | undefined {
  if (!node || typeof node !== "object" || Array.isArray(node)) return undefined;
  const keys = Object.keys(node);
  const k = keys[0];
  if (keys.length !== 1 || k === undefined) return undefined;
  const v = (node as Json)[k];
  return v && typeof v === "object" ? [k, v as Json] : undefined;
}

/** A_Const without its location, as a comparable string; undefined for non-literals. */
function literalKey(node: unknown): string | undefined {
  const u = unwrap(node);
  if (!u || u[0] !== "A_Const") return undefined;
  const { location: _ignored, ...rest } = u[1];
  return JSON.stringify(rest);
}

function isBoolTypeName(t: unknown): boolean {
  const names = (t as Json | undefined)?.names;
  if (!Array.isArray(names)) return false;
  const last = (unwrap(names[names.length - 1])?.[1] as Json | undefined)?.sval;
  return last === "bool" || last === "boolean";
}

function isConstBool(node: unknown, want: boolean): boolean {
  const u = unwrap(node);
  if (!u) return false;
  const [type, b] = u;
  if (type === "A_Const") {
    if ("boolval" in b) return Boolean((b.boolval as Json).boolval) === want;
    const s = (b.sval as Json | undefined)?.sval;
    if (want && typeof s === "string") return TRUE_STRINGS.has(s.trim().toLowerCase());
    return false;
  }
  if (type === "TypeCast" && isBoolTypeName(b.typeName)) {
    if (isConstBool(b.arg, want)) return true;
    const ival = ((unwrap(b.arg)?.[1] as Json | undefined)?.ival as Json | undefined)?.ival;
    return want && ival === 1;
  }
  return false;
}

export function isConstantTrue(node: unknown): boolean {
  const u = unwrap(node);
  if (!u) return false;
  const [type, b] = u;
  if (isConstBool(node, true)) return true;
  if (type === "BoolExpr") {
    const args = Array.isArray(b.args) ? b.args : [];
    if (b.boolop === "OR_EXPR") return args.some(isConstantTrue);
    if (b.boolop === "AND_EXPR") return args.length > 0 && args.every(isConstantTrue);
    if (b.boolop === "NOT_EXPR") return args.length === 1 && isConstBool(args[0], false);
    return false;
  }
  if (type === "A_Expr" && b.kind === "AEXPR_OP") {
    const op = (unwrap((b.name as unknown[] | undefined)?.[0])?.[1] as Json | undefined)?.sval;
    const l = literalKey(b.lexpr);
    const r = literalKey(b.rexpr);
    if (l === undefined || r === undefined) return false;
    if (op === "=") return l === r;
    // Only same-typed literals: '1' <> 1 is a comparison Postgres may coerce to equal.
    const sameType = Object.keys(JSON.parse(l) as Json)[0] === Object.keys(JSON.parse(r) as Json)[0];
    if (op === "<>" || op === "!=") return sameType && l !== r;
    return false;
  }
  if (type === "NullTest" && b.nulltesttype === "IS_NOT_NULL") return literalKey(b.arg) !== undefined && !("isnull" in (unwrap(b.arg)?.[1] ?? {}));
  if (type === "BooleanTest" && b.booltesttype === "IS_TRUE") return isConstantTrue(b.arg);
  return false;
}
