import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BackendReader, writeFrontend, type BackendMessage } from "../engines/postgres/protocol/index.js";
import { TEST_PG_URL } from "../store/testing.js";
import type { ColumnMasker } from "./content.js";
import { escapeText, maskCopyRow, unescapeText, type CopyFormatOptions } from "./copy-text.js";
import { mulberry32, sensitive, throughput, typical } from "./fixtures.js";
import { createMasker } from "./masker.js";

const KEY = "0123456789abcdef0123456789abcdef";
const detector = createMasker();
const content = detector.content() as ColumnMasker;
const TEXT: CopyFormatOptions = { format: "text" };
const CSV: CopyFormatOptions = { format: "csv" };
const row = (s: string): Buffer => Buffer.from(s, "utf8");
const masked = (r: Buffer, f: CopyFormatOptions, cols: (ColumnMasker | null | undefined)[] = [], fb: ColumnMasker | null = content): string =>
  maskCopyRow(r, f, cols, fb).row.toString("utf8");

// A column rule whose output holds every character the formats must escape or quote.
const nasty = createMasker({ columns: [{ match: "c", strategy: { type: "hash", key: KEY, prefix: "a\tb\\c,\"d\ne;'" } }] }).forColumn("c", []) as ColumnMasker;

describe("text format", () => {
  it("returns the same Buffer when nothing changes", () => {
    const r = row("Jane Doe\t42\t\\N\tx\\ty\\\\z\t2024-01-15 10:23:45+00\n");
    const out = maskCopyRow(r, TEXT, [], content);
    expect(out.row).toBe(r);
    expect(out.masked).toBe(0);
  });

  it("masks inside escaped fields and re-escapes, leaving other bytes as they were", () => {
    expect(masked(row("1\tx\\tjane@example.com\\n\t\\N\n"), TEXT)).toBe("1\tx\\t****\\n\t\\N\n");
    expect(masked(row("caf\\303\\251 jane@example.com\n"), TEXT)).toBe("café ****\n"); // octal escapes are bytes of UTF-8
  });

  it("escapes a masked value holding the delimiter, backslash and control characters", () => {
    const out = masked(row("keep\tsecret\n"), TEXT, [null, nasty]);
    expect(out.startsWith("keep\ta\\tb\\\\c,\"d\\ne;'")).toBe(true);
    expect(out.endsWith("\n")).toBe(true);
    expect(out.split("\t")).toHaveLength(2);
  });

  it("leaves NULL alone (the marker is compared before unescaping) and honours a custom marker", () => {
    const rule = createMasker({ columns: [{ match: "*", strategy: { type: "redact" } }] }).forColumn("x", []);
    expect(masked(row("\\N\t\\\\N\tNULL\n"), TEXT, [rule, rule, rule])).toBe("\\N\t****\t****\n");
    expect(masked(row("\\N\tNULL\n"), { format: "text", null: "NULL" }, [rule, rule])).toBe("****\tNULL\n");
  });

  it("uses an explicit null entry as 'leave alone' and the fallback for missing entries, per row", () => {
    const r = row("jane@example.com\tjane@example.com\tjane@example.com\njane@example.com\tx\ty\n");
    expect(masked(r, TEXT, [null, undefined])).toBe("jane@example.com\t****\t****\njane@example.com\tx\ty\n");
    expect(maskCopyRow(r, TEXT, [null], null).row).toBe(r);
  });

  it("supports another delimiter", () => {
    expect(masked(row("a|jane@example.com|b\n"), { format: "text", delimiter: "|" })).toBe("a|****|b\n");
    expect(masked(row("x|y\n"), { format: "text", delimiter: "|" }, [nasty])).toMatch(/^a\\tb\\\\c,"d\\ne;'[^|]*\|y\n$/);
  });

  it("decodes every escape of the spec and encodes like Postgres", () => {
    const raw = row("\\b\\f\\n\\r\\t\\v\\\\\\101\\0\\7777\\x41\\x4g\\xz\\q\\.");
    expect([...unescapeText(raw, 0, raw.length)]).toEqual([8, 12, 10, 13, 9, 11, 92, 65, 0, 255, 55, 65, 4, 103, 120, 122, 113, 46]);
    expect(escapeText(Buffer.from([8, 12, 10, 13, 9, 11, 92, 65, 1, 124]), 124).toString("latin1")).toBe("\\b\\f\\n\\r\\t\\v\\\\A\x01\\|");
  });

  it("refuses option values Postgres refuses", () => {
    expect(() => maskCopyRow(row("a\n"), { format: "text", delimiter: "ab" }, [], content)).toThrow(/DELIMITER/);
    expect(() => maskCopyRow(row("a\n"), { format: "text", delimiter: "n" }, [], content)).toThrow(/delimiter/);
    expect(() => maskCopyRow(row("a\n"), { format: "csv", delimiter: '"' }, [], content)).toThrow(/delimiter/);
  });
});

describe("csv format", () => {
  it("returns the same Buffer when nothing changes, quoted fields included", () => {
    const r = row('1,"a,b","say ""hi""","multi\nline",,""\n');
    expect(maskCopyRow(r, CSV, [], content).row).toBe(r);
  });

  it("masks inside quoted fields and quotes a masked value when it must", () => {
    expect(masked(row('1,"jane@example.com, ""boss"""\n'), CSV)).toBe('1,"****, ""boss"""\n');
    expect(masked(row("1,jane@example.com\n"), CSV)).toBe("1,****\n");
    expect(masked(row("x,y\n"), CSV, [nasty])).toMatch(/^"a\tb\\c,""d\ne;'[^"]*",y\n$/);
  });

  it("keeps NULL (unquoted empty) apart from the empty string", () => {
    const rule = createMasker({ columns: [{ match: "*", strategy: { type: "redact" } }] }).forColumn("x", []);
    expect(masked(row(',""\n'), CSV, [rule, rule])).toBe(',"****"\n');
  });

  it("honours custom DELIMITER, QUOTE, ESCAPE and NULL", () => {
    const f: CopyFormatOptions = { format: "csv", delimiter: ";", quote: "'", escape: "\\", null: "NULL" };
    expect(masked(row("NULL;'it\\'s jane@example.com; ok';''\n"), f)).toBe("NULL;'it\\'s ****; ok';''\n");
    const r = row("NULL;'it\\'s; fine'\n");
    expect(maskCopyRow(r, f, [], content).row).toBe(r);
    // A masked value equal to the NULL marker is quoted so that it does not read back as NULL.
    const rule = createMasker({ columns: [{ match: "*", strategy: { type: "redact" } }] }).forColumn("x", []);
    expect(masked(row("a,b\n"), { format: "csv", null: "****" }, [rule, null])).toBe('"****",b\n');
  });

  it("fails closed on an unterminated quoted field", () => {
    expect(() => maskCopyRow(row('1,"open\n'), CSV, [], content)).toThrow(/unterminated/);
  });
});

/** Minimal protocol client on the local PostgreSQL (trust auth), built on the gateway's own codec. */
class RawPg {
  private readonly reader = new BackendReader();
  private queue: BackendMessage[] = [];
  private wake: (() => void) | null = null;

  private constructor(private readonly socket: net.Socket) {
    socket.on("data", (chunk) => {
      this.queue.push(...this.reader.push(chunk));
      this.wake?.();
    });
  }

  static async connect(): Promise<RawPg> {
    const url = new URL(TEST_PG_URL);
    const socket = net.connect(Number(url.port || 5432), url.hostname);
    await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject));
    const pg = new RawPg(socket);
    const params = Object.assign(Object.create(null) as Record<string, string>, {
      user: decodeURIComponent(url.username || "postgres"),
      database: url.pathname.slice(1) || "postgres",
      client_encoding: "UTF8",
    });
    socket.write(writeFrontend({ type: "StartupMessage", protocolVersion: 196608, params }));
    await pg.untilReady();
    return pg;
  }

  private async next(): Promise<BackendMessage> {
    while (this.queue.length === 0) await new Promise<void>((resolve) => (this.wake = resolve));
    return this.queue.shift() as BackendMessage;
  }

  private async untilReady(onMessage: (m: BackendMessage) => void = () => {}): Promise<void> {
    for (;;) {
      const m = await this.next();
      if (m.type === "ErrorResponse") throw new Error(`postgres: ${JSON.stringify(m.fields)}`);
      if (m.type === "ReadyForQuery") return;
      onMessage(m);
    }
  }

  /** Simple query; answers a CopyInResponse with `copyIn`. Returns the messages before ReadyForQuery. */
  async query(sql: string, copyIn: Buffer[] = []): Promise<BackendMessage[]> {
    this.socket.write(writeFrontend({ type: "Query", query: sql }));
    const out: BackendMessage[] = [];
    let error: unknown;
    await this.untilReady((m) => {
      out.push(m);
      if (m.type === "CopyInResponse") {
        for (const data of copyIn) this.socket.write(writeFrontend({ type: "CopyData", data }));
        this.socket.write(writeFrontend({ type: "CopyDone" }));
      }
    }).catch((e: unknown) => (error = e));
    if (error) throw error;
    return out;
  }

  async rows(sql: string): Promise<(string | null)[][]> {
    return (await this.query(sql)).flatMap((m) => (m.type === "DataRow" ? [m.values.map((v) => (v === null ? null : v.toString("utf8")))] : []));
  }

  async copyOut(sql: string): Promise<Buffer[]> {
    // Copied: CopyData payloads may be views of socket chunks.
    return (await this.query(sql)).flatMap((m) => (m.type === "CopyData" ? [Buffer.from(m.data)] : []));
  }

  end(): void {
    this.socket.end(writeFrontend({ type: "Terminate" }));
  }
}

describe("against real PostgreSQL COPY output", () => {
  let pg: RawPg;
  // Values chosen to hit every escaping rule of both formats, plus sensitive ones to mask.
  const rnd = mulberry32(5);
  const tricky = [
    "plain", "", "tab\there", "new\nline", "cr\rhere", "back\\slash", "\\N", "\\.", "comma,here", 'quote"here', "semi;colon",
    "pipe|bar", "it's", "\b\f\v\x01", "ünïcødé 😀", "NULL", "jane.doe@example.com", 'x\t"jane@example.com",\n4111 1111 1111 1111',
    "call +44 20 7946 0958\\now", "078-05-1120",
  ];
  const values: (string | null)[] = [...tricky, null, ...Array.from({ length: 60 }, (_, i) => (i % 3 === 0 ? sensitive(rnd) : typical(rnd)))];

  beforeAll(async () => {
    pg = await RawPg.connect();
    await pg.query("CREATE TEMP TABLE src (id int, a text, b text); CREATE TEMP TABLE dst (id int, a text, b text)");
    const lit = (v: string | null): string => (v === null ? "NULL" : `'${v.replace(/'/g, "''")}'`);
    const tuples = values.map((v, i) => `(${i}, ${lit(v)}, ${lit(values[(i * 7 + 3) % values.length] ?? null)})`);
    await pg.query(`INSERT INTO src VALUES ${tuples.join(", ")}`);
  });
  afterAll(() => pg.end());

  const formats: Array<[string, string, CopyFormatOptions]> = [
    ["text", "", TEXT],
    // Not NULL 'NULL' here: text format cannot tell that marker from the string "NULL" (Postgres does not escape it).
    ["text, DELIMITER '|', NULL '<nil>'", "DELIMITER '|', NULL '<nil>'", { format: "text", delimiter: "|", null: "<nil>" }],
    ["csv", "FORMAT csv", CSV],
    ["csv, FORCE_QUOTE *", "FORMAT csv, FORCE_QUOTE *", CSV],
    ["csv, ; ' \\ NULL", "FORMAT csv, DELIMITER ';', QUOTE '''', ESCAPE '\\', NULL 'NULL'", { format: "csv", delimiter: ";", quote: "'", escape: "\\", null: "NULL" }],
  ];

  it.each(formats)("%s: masked rows load back into Postgres as exactly the masked values, and nothing leaks", async (_name, sqlOpts, opts) => {
    const withOpts = sqlOpts ? ` WITH (${sqlOpts})` : "";
    const rows = await pg.copyOut(`COPY (SELECT id, a, b FROM src ORDER BY id) TO STDOUT${withOpts}`);
    expect(rows).toHaveLength(values.length);
    // Column 0 (id) is left alone explicitly; a and b fall back to content masking.
    const results = rows.map((r) => maskCopyRow(r, opts, [null], content));
    const copyInOpts = sqlOpts.replace(/,?\s*FORCE_QUOTE \*/, "");
    await pg.query("TRUNCATE dst");
    await pg.query(`COPY dst FROM STDIN${copyInOpts ? ` WITH (${copyInOpts})` : ""}`, results.map((r) => r.row));

    const src = await pg.rows("SELECT a, b FROM src ORDER BY id");
    const dst = await pg.rows("SELECT a, b FROM dst ORDER BY id");
    const expected = src.map((cells) => cells.map((v) => (v === null ? null : content.maskText(v))));
    expect(dst).toEqual(expected);

    let changedRows = 0;
    results.forEach((res, i) => {
      const cells = src[i] ?? [];
      const unchanged = cells.every((v) => v === null || content.maskText(v) === v);
      // Rows with nothing to mask are forwarded as the very Buffer Postgres sent.
      if (unchanged) expect(res.row).toBe(rows[i]);
      else changedRows++;
      for (const v of cells) {
        if (v === null) continue;
        for (const d of detector.detect(v)) {
          const original = v.slice(d.start, d.end);
          if (original.length >= 8) expect(res.row.includes(Buffer.from(original)), original).toBe(false);
        }
      }
    });
    expect(changedRows).toBeGreaterThan(10);
  });

  it("prints COPY masking throughput for typical rows (not asserted)", async () => {
    await pg.query(
      "CREATE TEMP TABLE wide AS SELECT g AS id, 'user ' || g AS name, md5(g::text) AS digest, now() + g * interval '1 minute' AS ts, " +
        "(g % 2 = 0) AS flag, md5('u' || g)::uuid AS uid FROM generate_series(1, 20000) g",
    );
    // The detectors' own verdict on the same cells (a rare UUID holds a Luhn-valid digit run).
    const cells = (await pg.rows("SELECT * FROM wide")).flat();
    const expected = cells.filter((v) => v !== null && content.maskText(v) !== v).length;
    for (const [name, opts] of [["text", ""], ["csv", " WITH (FORMAT csv)"]] as const) {
      const rows = await pg.copyOut(`COPY wide TO STDOUT${opts}`);
      const f: CopyFormatOptions = name === "csv" ? CSV : TEXT;
      let changed = 0;
      const t = throughput(rows.length, () => {
        changed = 0;
        for (const r of rows) changed += maskCopyRow(r, f, [], content).masked;
      }, 5);
      console.log(`COPY ${name}: ${t.wall} rows/s wall, ${t.cpu} by CPU time (6 columns, content detectors on every column)`);
      expect(rows).toHaveLength(20_000);
      expect(changed).toBe(expected);
    }
  });
});
