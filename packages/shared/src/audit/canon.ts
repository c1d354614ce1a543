// Canonical bytes of an audit record, the input of its chain hash. A record is
// a fixed-order array of primitive fields, so the encoding is plain JSON of that
// array: no key order to agree on, and any reader (the gateway when it writes,
// `airlock audit verify` when it checks, an auditor's own script) gets the
// same bytes from the same values.
//   Date      → ISO 8601 UTC with milliseconds (the store keeps timestamp(3))
//   bigint    → decimal string (row and byte counts can pass 2^53)
//   Uint8Array → lowercase hex
//   undefined → null
export type CanonValue = string | number | boolean | null | undefined | bigint | Date | Uint8Array | readonly CanonValue[];

export function canonical(fields: readonly CanonValue[]): Buffer {
  return Buffer.from(JSON.stringify(fields.map(norm)), "utf8");
}

function norm(v: CanonValue): unknown {
  if (v === undefined || v === null) return null;
  if (v instanceof Date) return v.toISOString();
  if (typeof v === "bigint") return v.toString();
  if (v instanceof Uint8Array) return Buffer.from(v).toString("hex");
  if (Array.isArray(v)) return v.map(norm);
  if (typeof v === "number" && !Number.isFinite(v)) return null;
  return v;
}

/** A timestamp as the store returns it (Date, or an ISO/SQL string) in canonical form. */
export function isoMs(v: Date | string | null | undefined): string | null {
  if (v === null || v === undefined) return null;
  const d = v instanceof Date ? v : new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(v) ? v : `${v.replace(" ", "T")}Z`);
  return d.toISOString();
}
