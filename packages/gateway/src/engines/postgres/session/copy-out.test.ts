// What a COPY … TO STDOUT statement says about its output, parsed with the real parser.
import { beforeAll, describe, expect, it } from "vitest";
import { initAnalyzer } from "../analysis/analyzer.js";
import { copyOutSpec } from "./copy-out.js";

beforeAll(() => initAnalyzer());

describe("copyOutSpec", () => {
  it("reads format options and builds the describe query of a column list", () => {
    expect(copyOutSpec(`COPY s.customers (id, "Full Name") TO STDOUT WITH (FORMAT csv, HEADER, DELIMITER ';', NULL 'x', QUOTE '''')`)).toEqual({
      format: { format: "csv", delimiter: ";", null: "x", quote: "'" },
      unsupported: null,
      header: true,
      describeSql: `SELECT "id", "Full Name" FROM "s"."customers"`,
    });
    expect(copyOutSpec("COPY t TO STDOUT")?.describeSql).toBe(`SELECT * FROM "t"`);
    expect(copyOutSpec("COPY t TO STDOUT (HEADER false)")?.header).toBe(false);
    expect(copyOutSpec("COPY t TO STDOUT CSV HEADER")).toMatchObject({ format: { format: "csv" }, header: true });
  });

  it("takes a COPY's query text with the scanner, parentheses in strings and comments included", () => {
    expect(copyOutSpec("COPY (SELECT ')' AS p /* ) */, (1) FROM t) TO STDOUT")?.describeSql).toBe("SELECT ')' AS p /* ) */, (1) FROM t");
    expect(copyOutSpec("COPY (SELECT 'é' || x FROM t) TO STDOUT")?.describeSql).toBe("SELECT 'é' || x FROM t");
  });

  it("marks what cannot be masked, and ignores what is not a COPY TO STDOUT", () => {
    expect(copyOutSpec("COPY t TO STDOUT (FORMAT binary)")).toMatchObject({ format: null, unsupported: "binary format" });
    expect(copyOutSpec("COPY t TO STDOUT (ENCODING 'LATIN1')")).toMatchObject({ format: null, unsupported: "encoding LATIN1" });
    expect(copyOutSpec("COPY t TO STDOUT (DELIMITER 'a')")?.format).toBeNull();
    expect(copyOutSpec("COPY t FROM STDIN")).toBeNull();
    expect(copyOutSpec("COPY t TO '/tmp/x'")).toBeNull();
    expect(copyOutSpec("SELECT 1")).toBeNull();
  });
});
