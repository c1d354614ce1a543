import { describe, expect, it } from "vitest";
import { genericBody } from "./generic.js";
import { escapeMrkdwn, slackMessage, STATEMENT_LIMIT } from "./slack.js";
import type { ReviewSummary } from "./types.js";
import { review } from "./fixtures.js";

type Block = { type: string; text?: { type: string; text: string }; fields?: Array<{ text: string }>; elements?: Array<{ text: string }> };

function texts(blocks: unknown[]): string[] {
  return (blocks as Block[]).flatMap((b) => [b.text?.text, ...(b.fields ?? []).map((f) => f.text), ...(b.elements ?? []).map((e) => e.text)]).filter((t): t is string => t !== undefined);
}

function codeBlock(blocks: unknown[]): string {
  const t = texts(blocks).find((x) => x.startsWith("```"));
  if (t === undefined) throw new Error("no code block");
  return t;
}

describe("slackMessage", () => {
  it("builds a review.created message with header, statement, fields and how to act", () => {
    const m = slackMessage("review.created", review);
    expect(m.text).toContain("alice@example.com");
    expect(m.text).toContain("prod-db");
    const blocks = m.blocks as Block[];
    expect(blocks[0]).toEqual({ type: "header", text: { type: "plain_text", text: ":lock: Review requested", emoji: true } });
    expect(codeBlock(m.blocks)).toBe("```\nDELETE FROM orders WHERE created_at &lt; now() - interval '1 year'\n```");
    const fields = blocks.find((b) => b.fields)!.fields!.map((f) => f.text);
    expect(fields).toContain("*Requester*\nalice@example.com");
    expect(fields).toContain("*Connection*\nprod-db");
    expect(fields).toContain("*Reviewers*\ndba, security\n2 approvals needed");
    expect(fields).toContain("*Expires*\n<!date^1893553445^{date_short_pretty} {time}|2030-01-02T03:04:05.000Z>");
    expect(fields).toContain("*Rule*\ndeletes-need-review");
    const all = texts(m.blocks).join("\n");
    expect(all).toContain("`airlock review approve 3f2b6a9e-1c1d-4e4f-9a55-0d6c1b7f2e10`");
    expect(all).toContain("`airlock review reject 3f2b6a9e-1c1d-4e4f-9a55-0d6c1b7f2e10 --reason \"…\"`");
    expect(all).toContain(`<${review.url}|Open the review>`);
    expect(all).toContain("*Reason*\nyearly cleanup");
  });

  it("shows decisions without the approve/reject instructions", () => {
    const m = slackMessage("review.approved", { ...review, status: "approved", decidedBy: ["bob", "carol"], decidedReason: "looks fine" });
    expect((m.blocks[0] as Block).text!.text).toBe(":white_check_mark: Review approved");
    const all = texts(m.blocks).join("\n");
    expect(all).toContain("*Decided by*\nbob, carol");
    expect(all).toContain("*Decision note*\nlooks fine");
    expect(all).toContain("*Status*\napproved");
    expect(all).not.toContain("approve 3f2b");
    expect(m.text).toContain("was approved");
    for (const type of ["review.rejected", "review.expired", "review.cancelled"] as const) {
      expect(texts(slackMessage(type, review).blocks).join("\n")).not.toContain("airlock review reject");
    }
  });

  it("describes access requests with role and duration and no code block", () => {
    const m = slackMessage("review.created", { ...review, kind: "access", statement: null, role: "readwrite", durationSeconds: 7200 });
    const all = texts(m.blocks);
    expect(all.some((t) => t.startsWith("```"))).toBe(false);
    expect(all).toContain("*Role*\nreadwrite");
    expect(all).toContain("*Duration*\n2 h");
    expect(m.text).toContain("access to prod-db as readwrite");
  });

  it("truncates a long statement and stays within Slack's block limits", () => {
    const statement = "SELECT " + "x, ".repeat(5000) + "1";
    const m = slackMessage("review.created", { ...review, statement, reason: "r".repeat(5000) });
    const code = codeBlock(m.blocks);
    expect(code.length).toBeLessThanOrEqual(STATEMENT_LIMIT + 100);
    expect(code).toMatch(/… \(12\d{3} more characters not shown\)\n```$/);
    expect(code.startsWith("```\nSELECT x, x, ")).toBe(true);
    for (const t of texts(m.blocks)) expect(t.length).toBeLessThanOrEqual(3000);
    const header = (m.blocks[0] as Block).text!.text;
    expect(header.length).toBeLessThanOrEqual(150);
  });

  it("counts the limit after escaping and never cuts an entity or a surrogate pair", () => {
    const out = escapeMrkdwn("<".repeat(10), 12);
    expect(out).toBe("&lt;&lt;&lt;\n… (7 more characters not shown)");
    expect(escapeMrkdwn("ab😀cd", 3)).toBe("ab\n… (3 more characters not shown)");
  });

  it("neutralises backticks so the statement cannot close its code block", () => {
    const statement = "SELECT `id` FROM t; ```\n*pwned* <!channel> <https://evil.example|click to approve>";
    const code = codeBlock(slackMessage("review.created", { ...review, statement }).blocks);
    // Only the fence we add opens and closes the block.
    expect(code.match(/`/g)).toHaveLength(6);
    expect(code.startsWith("```\n") && code.endsWith("\n```")).toBe(true);
    expect(code).toContain("SELECT ˋidˋ FROM t; ˋˋˋ");
    // Mentions and links written by the requester are shown, not acted on.
    expect(code).toContain("&lt;!channel&gt;");
    expect(code).not.toContain("<!channel>");
    expect(code).not.toContain("<https://evil");
  });

  it("escapes requester-written text everywhere, not only the statement", () => {
    const m = slackMessage("review.created", { ...review, requester: "<!here>", reason: "<https://evil.example|approve>", cli: "airlock `rm`" });
    const all = [m.text, ...texts(m.blocks)].join("\n");
    expect(all).not.toContain("<!here>");
    expect(all).not.toContain("<https://evil.example");
    expect(all).toContain("&lt;!here&gt;");
    expect(all).toContain("`airlock ˋrmˋ approve ");
  });

  it("leaves out a URL that is not http(s) and never carries unknown fields", () => {
    const withExtras = { ...review, url: "javascript:alert(1)", secret: "whsec_do_not_leak", password: "hunter2" } as ReviewSummary;
    const json = JSON.stringify(slackMessage("review.created", withExtras));
    expect(json).not.toContain("javascript:");
    expect(json).not.toContain("whsec_do_not_leak");
    expect(json).not.toContain("hunter2");
  });
});

describe("genericBody", () => {
  it("is { type, at, review } with only the documented review fields", () => {
    const at = new Date("2029-05-06T07:08:09.010Z");
    const body = JSON.parse(genericBody("review.rejected", { ...review, secret: "whsec_do_not_leak" } as ReviewSummary, at));
    expect(body).toEqual({ type: "review.rejected", at: "2029-05-06T07:08:09.010Z", review });
    expect(JSON.stringify(body)).not.toContain("whsec_do_not_leak");
  });
});
