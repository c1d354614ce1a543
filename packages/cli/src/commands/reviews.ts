import type { Command } from "commander";
import { apiFor, print } from "../context.js";
import { ago, parseDuration, table } from "../output.js";

type Review = {
  id: string;
  kind: string;
  status: string;
  requester: string;
  connection: string;
  statement: string | null;
  params: unknown[] | null;
  role: string | null;
  reason: string | null;
  rule: string | null;
  ruleReason: string | null;
  reviewerGroups: string[];
  approvalsNeeded: number;
  allGroups: boolean;
  scope: string;
  usesLeft: number;
  validUntil: string | null;
  expiresAt: string;
  decidedReason: string | null;
  createdAt: string;
  canDecide?: boolean;
  decisions: Array<{ reviewer: string; decision: string; reason: string | null; at: string }>;
};

const oneLine = (s: string | null, n = 60) => (s ? (s.replace(/\s+/g, " ").length > n ? `${s.replace(/\s+/g, " ").slice(0, n - 1)}…` : s.replace(/\s+/g, " ")) : "-");

function show(r: Review): string {
  const need = r.allGroups ? `one from each of ${r.reviewerGroups.join(", ")}` : `${r.approvalsNeeded} from ${r.reviewerGroups.join(", ")}`;
  return [
    `review:     ${r.id}  (${r.kind}, ${r.status}${r.canDecide ? ", you may decide" : ""})`,
    `requester:  ${r.requester} on ${r.connection}, ${ago(r.createdAt)}`,
    ...(r.statement ? [`statement:  ${r.statement}`, ...(r.params?.length ? [`parameters: ${JSON.stringify(r.params)}`] : [])] : []),
    ...(r.role ? [`role:       ${r.role}`] : []),
    ...(r.reason ? [`why:        ${r.reason}`] : []),
    ...(r.rule ? [`policy:     ${r.rule}${r.ruleReason ? ` (${r.ruleReason})` : ""}`] : []),
    `approvals:  ${need}`,
    r.status === "pending" ? `expires:    ${r.expiresAt}` : `decided:    ${r.decidedReason ?? "-"}`,
    ...(r.status === "approved" ? [`covers:     ${r.scope}, ${r.usesLeft} use(s) left, until ${r.validUntil}`] : []),
    ...r.decisions.map((d) => `  ${d.decision === "approve" ? "approved" : "rejected"} by ${d.reviewer} at ${d.at}${d.reason ? `: ${d.reason}` : ""}`),
  ].join("\n") + "\n";
}

/** Reviews: what waits for a human decision, and deciding it. */
export function registerReviews(program: Command): Command {
  const reviews = program.command("reviews").description("statements and access requests waiting for a reviewer");
  reviews
    .command("list")
    .option("--status <status>", "pending, approved, rejected, expired, cancelled", "pending")
    .option("--all", "every status")
    .option("--mine", "only my own requests")
    .action(async (o: { status: string; all?: boolean; mine?: boolean }, cmd: Command) => {
      const q = new URLSearchParams({ ...(o.all ? {} : { status: o.status }), ...(o.mine ? { mine: "true" } : {}) });
      const r = await (await apiFor(cmd)).get<{ reviews: Review[] }>(`/api/v1/reviews?${q}`);
      print(cmd, r, () =>
        table(
          r.reviews.map((x) => ({ id: x.id, status: x.status, requester: x.requester, connection: x.connection, what: oneLine(x.statement ?? (x.role ? `role ${x.role}` : null)), age: ago(x.createdAt), decide: x.canDecide ? "yes" : "" })),
          ["id", "status", "requester", "connection", "what", "age", "decide"],
        ),
      );
    });
  reviews.command("show <id>").action(async (id: string, _o, cmd: Command) => {
    const r = await (await apiFor(cmd)).get<Review>(`/api/v1/reviews/${encodeURIComponent(id)}`);
    print(cmd, r, () => show(r));
  });
  reviews
    .command("approve <id>")
    .description("approve exactly the statement shown (once, unless --scope/--uses/--for say otherwise)")
    .option("--reason <text>")
    .option("--scope <scope>", "once | session | identity", "once")
    .option("--uses <n>", "how many runs the approval covers", "1")
    .option("--for <duration>", "how long the approval stays usable (default 10m; access requests: what was asked)")
    .action(async (id: string, o: { reason?: string; scope: string; uses: string; for?: string }, cmd: Command) => {
      const r = await (await apiFor(cmd)).post<Review>(`/api/v1/reviews/${encodeURIComponent(id)}/approve`, {
        ...(o.reason ? { reason: o.reason } : {}),
        scope: o.scope,
        uses: Number(o.uses),
        ...(o.for ? { windowSeconds: parseDuration(o.for) } : {}),
      });
      print(cmd, r, () => (r.status === "approved" ? `Approved: review ${r.id} (${r.scope}, ${r.usesLeft} use(s), until ${r.validUntil}).\n` : `Your approval is recorded; review ${r.id} still needs more approvals.\n`));
    });
  reviews
    .command("reject <id>")
    .requiredOption("--reason <text>", "told to the requester")
    .action(async (id: string, o: { reason: string }, cmd: Command) => {
      const r = await (await apiFor(cmd)).post<Review>(`/api/v1/reviews/${encodeURIComponent(id)}/reject`, { reason: o.reason });
      print(cmd, r, () => `Rejected: review ${r.id}.\n`);
    });
  reviews
    .command("cancel <id>")
    .option("--reason <text>")
    .action(async (id: string, o: { reason?: string }, cmd: Command) => {
      const r = await (await apiFor(cmd)).post<Review>(`/api/v1/reviews/${encodeURIComponent(id)}/cancel`, o.reason ? { reason: o.reason } : {});
      print(cmd, r, () => `Cancelled: review ${r.id}.\n`);
    });
  reviews
    .command("revoke <id>")
    .description("end an approved access grant early (its live sessions are cut)")
    .requiredOption("--reason <text>")
    .action(async (id: string, o: { reason: string }, cmd: Command) => {
      const r = await (await apiFor(cmd)).post<Review & { sessionsCut: number }>(`/api/v1/reviews/${encodeURIComponent(id)}/revoke`, { reason: o.reason });
      print(cmd, r, () => `Revoked: grant ${r.id}; ${r.sessionsCut} live session(s) cut.\n`);
    });

  program
    .command("request <connection>")
    .description("ask for temporary access to a connection: a role (or a group policies know) for a while; reviewers decide")
    .requiredOption("--role <role>", "an Airlock role (user) or a group policies see (e.g. dba, oncall)")
    .requiredOption("--for <duration>", "how long, e.g. 30m, 2h (at most 7d)")
    .requiredOption("--reason <text>", "why; reviewers see it")
    .option("--wait", "wait for the decision")
    .action(async (connection: string, o: { role: string; for: string; reason: string; wait?: boolean }, cmd: Command) => {
      const api = await apiFor(cmd);
      let r = await api.post<Review>("/api/v1/access-requests", { connection, role: o.role, durationSeconds: parseDuration(o.for), reason: o.reason });
      if (!o.wait) return print(cmd, r, () => `Requested: review ${r.id} (${o.role} on ${connection} for ${o.for}); reviewers: ${r.reviewerGroups.join(", ")}.\n`);
      process.stderr.write(`Requested: review ${r.id}; waiting for ${r.reviewerGroups.join(", ")} …\n`);
      while (r.status === "pending") {
        await new Promise((res) => setTimeout(res, 2000));
        r = await api.get<Review>(`/api/v1/reviews/${encodeURIComponent(r.id)}`);
      }
      print(cmd, r, () => (r.status === "approved" ? `Granted: ${o.role} on ${connection} until ${r.validUntil}.\n` : `Not granted: review ${r.id} ${r.status}${r.decidedReason ? ` (${r.decidedReason})` : ""}.\n`));
      if (r.status !== "approved") process.exitCode = 3;
    });
  return reviews;
}
