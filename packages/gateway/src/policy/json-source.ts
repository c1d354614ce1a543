// A small JSON parser that remembers where every value sits, so errors in
// bundle JSON files (masking.json, *.tests.json) can say file:line:column like
// the Cedar ones. JSON.parse reports no position on many errors and none at all
// for values that parse but are wrong. Grammar: RFC 8259
// (https://www.rfc-editor.org/rfc/rfc8259); strings are decoded by JSON.parse.

export type JsonPath = ReadonlyArray<string | number>;

export interface Position { line: number; column: number }

export type JsonSourceResult =
  | { ok: true; value: unknown; at(path: JsonPath): Position }
  | { ok: false; error: Position & { message: string } };

class SyntaxFault extends Error {
  constructor(readonly offset: number, message: string) {
    super(message);
  }
}

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const STRING = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y;
const MAX_DEPTH = 64;
const LITERALS: Array<[string, unknown]> = [["true", true], ["false", false], ["null", null]];

/** 1-based line and column (in UTF-16 code units) of a string offset. */
export function positionOf(text: string, offset: number): Position {
  const before = text.slice(0, offset);
  const nl = before.lastIndexOf("\n");
  return { line: before.split("\n").length, column: offset - nl };
}

export function parseJsonSource(text: string): JsonSourceResult {
  // Path (NUL-joined) -> offset of the member's key, or of the element for arrays.
  const offsets = new Map<string, number>();
  let i = 0;
  const ws = () => { while (i < text.length && " \t\n\r".includes(text[i]!)) i++; };
  const fault = (message: string): never => {
    throw new SyntaxFault(i, i >= text.length ? "unexpected end of JSON" : message);
  };
  const expect = (ch: string, what: string) => {
    ws();
    if (text[i] !== ch) fault(`expected ${what}, found ${JSON.stringify(text[i])}`);
    i++;
  };
  const match = (re: RegExp): string | undefined => {
    re.lastIndex = i;
    const m = re.exec(text);
    if (m) i += m[0].length;
    return m?.[0];
  };

  function value(path: Array<string | number>): unknown {
    // Bundle files are flat; the limit keeps hostile input from exhausting the stack.
    if (path.length > MAX_DEPTH) fault(`nested deeper than ${MAX_DEPTH} levels`);
    ws();
    const c = text[i];
    if (c === "{") return object(path);
    if (c === "[") return array(path);
    if (c === '"') {
      const s = match(STRING);
      return s === undefined ? fault("invalid string (unescaped control character or bad escape)") : (JSON.parse(s) as string);
    }
    if (c === "-" || (c !== undefined && c >= "0" && c <= "9")) {
      const n = match(NUMBER);
      return n === undefined ? fault("invalid number") : Number(n);
    }
    for (const [word, v] of LITERALS) if (text.startsWith(word, i)) return (i += word.length), v;
    return fault(`unexpected ${JSON.stringify(c)}`);
  }

  function object(path: Array<string | number>): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    i++;
    ws();
    if (text[i] === "}") return i++, out;
    for (;;) {
      ws();
      const keyAt = i;
      const raw = text[i] === '"' ? match(STRING) : undefined;
      if (raw === undefined) fault("expected a double-quoted property name");
      const key = JSON.parse(raw!) as string;
      offsets.set([...path, key].join("\0"), keyAt);
      expect(":", "':'");
      // defineProperty: a "__proto__" key must stay data, as with JSON.parse.
      Object.defineProperty(out, key, { value: value([...path, key]), enumerable: true, writable: true, configurable: true });
      ws();
      if (text[i] === ",") { i++; continue; }
      expect("}", "',' or '}'");
      return out;
    }
  }

  function array(path: Array<string | number>): unknown[] {
    const out: unknown[] = [];
    i++;
    ws();
    if (text[i] === "]") return i++, out;
    for (;;) {
      ws();
      offsets.set([...path, out.length].join("\0"), i);
      out.push(value([...path, out.length]));
      ws();
      if (text[i] === ",") { i++; continue; }
      expect("]", "',' or ']'");
      return out;
    }
  }

  try {
    const v = value([]);
    ws();
    if (i < text.length) fault(`unexpected ${JSON.stringify(text[i])} after the JSON value`);
    return {
      ok: true,
      value: v,
      // The deepest recorded ancestor: a missing key points at its object.
      at(path) {
        for (let n = path.length; n > 0; n--) {
          const off = offsets.get(path.slice(0, n).join("\0"));
          if (off !== undefined) return positionOf(text, off);
        }
        return positionOf(text, text.search(/\S/) < 0 ? 0 : text.search(/\S/));
      },
    };
  } catch (e) {
    if (!(e instanceof SyntaxFault)) throw e;
    return { ok: false, error: { ...positionOf(text, Math.min(e.offset, text.length)), message: e.message } };
  }
}
