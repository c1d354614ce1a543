// The Slack incoming-webhook message for a review event (Block Kit).
//
// Most of what we show is written by the requester (statement, reason), so
// every piece of it is escaped for Slack's mrkdwn: `&`, `<`, `>` become
// entities (else `<!channel>` in a reason would ping a whole channel, and
// `<https://evil|approve here>` would render as a disguised link), and
// backticks are replaced so a statement cannot close its code block and
// format the rest of the message. Sizes stay within Slack's block limits
// (section text 3,000, field 2,000, header 150 characters).
import type { ReviewEventType, ReviewSummary } from "./types.js";

/** Statement text shown in the code block, counted after escaping. */
export const STATEMENT_LIMIT = 2500;
const REASON_LIMIT = 1000;
const FIELD_LIMIT = 300;
const MAX_REVIEWERS_SHOWN = 20;

/**
 * U+02CB MODIFIER LETTER GRAVE ACCENT: looks like a backtick, so MySQL-style
 * `identifiers` stay readable, but cannot open or close Slack code.
 */
const BACKTICK_STANDIN = "\u02CB";

const ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", "`": BACKTICK_STANDIN };

/**
 * Escapes `s` for mrkdwn and cuts it so the escaped text stays within `max`
 * characters. Cuts between code points of the original (never inside an
 * entity or a surrogate pair) and says how much was left out.
 */
export function escapeMrkdwn(s: string, max = Number.POSITIVE_INFINITY): string {
  let out = "";
  const chars = Array.from(s);
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i]!;
    const e = ESCAPES[c] ?? c;
    if (out.length + e.length > max) {
      const left = chars.length - i;
      return `${out}\n… (${left} more character${left === 1 ? "" : "s"} not shown)`;
    }
    out += e;
  }
  return out;
}

/** A link whose target cannot break out of Slack's `<url|label>` syntax. */
function link(url: string, label: string): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return undefined;
  }
  if (u.protocol !== "https:" && u.protocol !== "http:") return undefined;
  const href = u.href.replace(/\|/g, "%7C").replace(/</g, "%3C").replace(/>/g, "%3E").replace(/&/g, "&amp;");
  return `<${href}|${escapeMrkdwn(label)}>`;
}

const TITLES: Record<ReviewEventType, { emoji: string; title: string; verb: string }> = {
  "review.created": { emoji: ":lock:", title: "Review requested", verb: "needs a review" },
  "review.approved": { emoji: ":white_check_mark:", title: "Review approved", verb: "was approved" },
  "review.rejected": { emoji: ":no_entry:", title: "Review rejected", verb: "was rejected" },
  "review.expired": { emoji: ":hourglass:", title: "Review expired", verb: "expired without a decision" },
  "review.cancelled": { emoji: ":heavy_multiplication_x:", title: "Review cancelled", verb: "was cancelled" },
};

function formatDuration(seconds: number): string {
  if (seconds % 86400 === 0) return `${seconds / 86400} d`;
  if (seconds % 3600 === 0) return `${seconds / 3600} h`;
  if (seconds % 60 === 0) return `${seconds / 60} min`;
  return `${seconds} s`;
}

/** Slack renders `<!date^…>` in each reader's own time zone; the fallback is the ISO time. */
function formatExpiry(iso: string): string {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return escapeMrkdwn(iso, FIELD_LIMIT);
  const at = new Date(ms).toISOString();
  return `<!date^${Math.floor(ms / 1000)}^{date_short_pretty} {time}|${at}>`;
}

function field(label: string, value: string): { type: "mrkdwn"; text: string } {
  return { type: "mrkdwn", text: `*${label}*\n${value}` };
}

function subject(r: ReviewSummary): string {
  const who = escapeMrkdwn(r.requester, FIELD_LIMIT);
  const where = escapeMrkdwn(r.connection, FIELD_LIMIT);
  if (r.kind === "access") {
    const role = r.role ? ` as ${escapeMrkdwn(r.role, FIELD_LIMIT)}` : "";
    return `${who}'s request for access to ${where}${role}`;
  }
  return `${who}'s statement on ${where}`;
}

export function slackMessage(type: ReviewEventType, r: ReviewSummary): { text: string; blocks: unknown[] } {
  const t = TITLES[type];
  // Fallback text: notifications and clients without Block Kit show this.
  const text = `${t.emoji} ${subject(r)} ${t.verb}`;

  const groups = r.reviewerGroups.slice(0, MAX_REVIEWERS_SHOWN).map((g) => escapeMrkdwn(g, 128)).join(", ");
  const more = r.reviewerGroups.length > MAX_REVIEWERS_SHOWN ? ` (+${r.reviewerGroups.length - MAX_REVIEWERS_SHOWN} more)` : "";
  const needed = `${r.approvalsNeeded} approval${r.approvalsNeeded === 1 ? "" : "s"} needed`;
  const fields = [
    field("Requester", escapeMrkdwn(r.requester, FIELD_LIMIT)),
    field("Connection", escapeMrkdwn(r.connection, FIELD_LIMIT)),
    field("Reviewers", `${groups || "—"}${more}\n${needed}`),
    field(type === "review.created" ? "Expires" : "Status", type === "review.created" ? formatExpiry(r.expiresAt) : escapeMrkdwn(r.status, FIELD_LIMIT)),
  ];
  if (r.kind === "access" && r.role) fields.push(field("Role", escapeMrkdwn(r.role, FIELD_LIMIT)));
  if (r.kind === "access" && r.durationSeconds) fields.push(field("Duration", formatDuration(r.durationSeconds)));
  if (r.rule) fields.push(field("Rule", escapeMrkdwn(r.rule, FIELD_LIMIT)));
  if (r.decidedBy?.length) fields.push(field("Decided by", r.decidedBy.slice(0, MAX_REVIEWERS_SHOWN).map((d) => escapeMrkdwn(d, 128)).join(", ")));

  const blocks: unknown[] = [
    // Header text is plain_text (no mrkdwn parsing) and only ever our own words.
    { type: "header", text: { type: "plain_text", text: `${t.emoji} ${t.title}`, emoji: true } },
    { type: "section", text: { type: "mrkdwn", text: `${subject(r)} ${t.verb}.` } },
    { type: "section", fields },
  ];
  if (r.statement) {
    blocks.push({ type: "section", text: { type: "mrkdwn", text: "```\n" + escapeMrkdwn(r.statement, STATEMENT_LIMIT) + "\n```" } });
  }
  if (r.params?.length) {
    // The approval covers these values too: a reviewer must see them, not just "$1".
    blocks.push({ type: "section", text: { type: "mrkdwn", text: "*Parameters*\n```\n" + escapeMrkdwn(JSON.stringify(r.params), REASON_LIMIT) + "\n```" } });
  }
  if (r.reason) blocks.push({ type: "section", text: { type: "mrkdwn", text: `*Reason*\n${escapeMrkdwn(r.reason, REASON_LIMIT)}` } });
  if (r.decidedReason) blocks.push({ type: "section", text: { type: "mrkdwn", text: `*Decision note*\n${escapeMrkdwn(r.decidedReason, REASON_LIMIT)}` } });

  if (type === "review.created") {
    const cli = escapeMrkdwn(r.cli, FIELD_LIMIT);
    const id = escapeMrkdwn(r.id, 128);
    const lines = [`*Approve:* \`${cli} approve ${id}\``, `*Reject:* \`${cli} reject ${id} --reason "…"\``];
    const open = link(r.url, "Open the review");
    if (open) lines.push(open);
    blocks.push({ type: "section", text: { type: "mrkdwn", text: lines.join("\n") } });
  }
  blocks.push({ type: "context", elements: [{ type: "mrkdwn", text: `Airlock review ${escapeMrkdwn(r.id, 128)} · ${escapeMrkdwn(r.kind, 32)}` }] });
  return { text, blocks };
}
