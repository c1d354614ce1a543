// The recorded history `pnpm bench audit` searches: sessions and statements
// written straight into a gateway store's tables with generate_series, so a
// million statements take seconds, not the hours real sessions would.
//
// Shape: USERS identities (user-00@example.com …), SESSIONS sessions spread
// uniformly over the last DAYS days, each with statements one to three seconds
// apart. Texts come from ~20 everyday templates with varying literals (so the
// text index sees many distinct words), plus search terms of known frequency:
//   RARE      "payroll_adjustments" in 0.01% of statements
//   UNCOMMON  "refunds" in 1%
//   COMMON    "customers" in ~15% (three of the templates)
// About 2% are denied, 1% held for review, 10% had values masked.
// random() is seeded, so every run builds the same history.

export const USERS = 50;
export const DAYS = 30;
export const TERMS = { rare: "payroll_adjustments", uncommon: "refunds", common: "customers" };

const TEMPLATES = [
  `'SELECT id, email, full_name FROM customers WHERE id = ' || n`,
  `'SELECT * FROM orders WHERE customer_id = ' || n || ' ORDER BY created_at DESC LIMIT 20'`,
  `'UPDATE orders SET status = ''shipped'', updated_at = now() WHERE id = ' || n`,
  `'INSERT INTO events (kind, payload) VALUES (''page_view'', ''{"page": "/products/' || n || '"}'')'`,
  `'SELECT count(*) FROM invoices WHERE customer_id = ' || n || ' AND due_at < now()'`,
  `'DELETE FROM cart_items WHERE cart_id = ' || n`,
  `'SELECT p.name, sum(oi.quantity) FROM order_items oi JOIN products p ON p.id = oi.product_id WHERE oi.created_at > now() - interval ''' || (n % 30) || ' days'' GROUP BY p.name'`,
  `'BEGIN'`,
  `'SELECT email FROM customers WHERE email LIKE ''%' || n || '@example.com'''`,
  `'UPDATE inventory SET quantity = quantity - 1 WHERE sku = ''SKU-' || n || ''''`,
  `'SELECT id, amount, currency FROM payments WHERE status = ''failed'' AND created_at > now() - interval ''1 day'''`,
  `'EXPLAIN ANALYZE SELECT * FROM shipments WHERE tracking_number = ''TRK' || n || ''''`,
  `'COMMIT'`,
  `'INSERT INTO audit_log (actor, action) VALUES (''svc-' || (n % 100) || ''', ''login'')'`,
  `'SELECT c.id, c.email, a.city FROM customers c JOIN addresses a ON a.customer_id = c.id WHERE a.postcode = ''' || lpad((n % 99999)::text, 5, '0') || ''''`,
  `'SELECT id FROM subscriptions WHERE renews_at BETWEEN now() AND now() + interval ''7 days'''`,
  `'SELECT w.id, w.name, w.region FROM warehouses w WHERE w.capacity > ' || n`,
  `'VACUUM ANALYZE order_items'`,
  `'SELECT id, title, body FROM support_tickets WHERE assignee = ''agent-' || (n % 40) || ''' AND status = ''open'''`,
  `'UPDATE users SET last_login_at = now() WHERE id = ' || n`,
];

/**
 * SQL that fills `sessions` and `statements` (the gateway's tables, migrations
 * applied) with `total` statements in `sessions` sessions. The statements
 * table's secondary indexes are dropped for the load and built again after it
 * (bulk GIN/btree builds are far faster than row-by-row maintenance); their
 * definitions are read back from pg_indexes, so they are exactly the gateway's.
 */
export function historySql({ total, sessions }) {
  const per = Math.ceil(total / sessions);
  const tmpl = TEMPLATES.map((t, i) => `WHEN ${i} THEN ${t}`).join("\n      ");
  return `
SET maintenance_work_mem = '512MB';
SELECT setseed(0.42);
CREATE TEMP TABLE bench_s AS
SELECT k, gen_random_uuid() AS id,
       'user-' || lpad((k % ${USERS})::text, 2, '0') || '@example.com' AS subject,
       (timezone('UTC', now()) - interval '${DAYS} days' + random() * interval '${DAYS} days')::timestamp(3) AS started_at,
       CASE WHEN k % ${USERS} < 10 THEN ARRAY['dba', 'developers'] WHEN k % ${USERS} < 30 THEN ARRAY['analytics'] ELSE ARRAY['developers'] END AS groups,
       (ARRAY['orders-db', 'billing-db', 'analytics-wh', 'crm-db', 'inventory-db', 'support-db', 'payroll-db', 'events-db'])[1 + k % 8] AS connection,
       random() AS r
  FROM generate_series(0, ${sessions - 1}) k;
INSERT INTO sessions (id, subject, subject_kind, auth_method, connection_name, protocol, client_addr, started_at, ended_at, outcome, groups, bytes_up, bytes_down)
SELECT id, subject, 'user', 'oidc', connection, 'postgres', '10.0.' || (k % 200) || '.' || (k % 250) || ':5' || lpad((k % 9999)::text, 4, '0'),
       started_at, started_at + interval '${per * 2} seconds',
       CASE WHEN r < 0.9 THEN 'ok' WHEN r < 0.97 THEN 'failed' ELSE 'denied' END, groups, (r * 1e6)::bigint, (r * 1e8)::bigint
  FROM bench_s;

CREATE TEMP TABLE bench_idx AS SELECT indexname, indexdef FROM pg_indexes
 WHERE schemaname = 'public' AND tablename = 'statements' AND indexname <> 'statements_pkey'
   AND indexdef NOT LIKE 'CREATE UNIQUE%';
DO $$ DECLARE i record; BEGIN
  FOR i IN SELECT indexname FROM bench_idx LOOP EXECUTE format('DROP INDEX %I', i.indexname); END LOOP;
END $$;

INSERT INTO statements (id, session_id, seq, text, kind, command, objects, decision, rule, reason, status, started_at, duration_ms, rows, command_tag, masked, error_code, subject)
SELECT gen_random_uuid(), s.id, x.seq, x.text, lower(split_part(x.text, ' ', 1)), upper(split_part(x.text, ' ', 1)), '{}',
       x.decision, CASE x.decision WHEN 'deny' THEN 'no-unbounded-writes' WHEN 'review' THEN 'review-writes' END,
       CASE x.decision WHEN 'deny' THEN 'denied by policy' WHEN 'review' THEN 'held for review' END,
       CASE x.decision WHEN 'deny' THEN 'denied' ELSE 'ok' END,
       s.started_at + (x.seq * interval '1 second') + (x.r3 * interval '1 second'),
       CASE WHEN x.decision = 'deny' THEN NULL ELSE (x.r3 * 20)::numeric(8, 3)::float8 END,
       CASE WHEN x.decision = 'deny' THEN NULL ELSE (x.n % 50)::bigint END,
       CASE WHEN x.decision = 'deny' THEN NULL ELSE upper(split_part(x.text, ' ', 1)) END,
       CASE WHEN x.r3 < 0.1 THEN 1 + x.n % 3 ELSE 0 END,
       CASE WHEN x.decision = 'deny' THEN 'STATEMENT_DENIED' END,
       s.subject
  FROM (
    SELECT g, g % ${per} + 1 AS seq, g / ${per} AS k, r3, n,
           CASE WHEN r3 < 0.02 THEN 'deny' WHEN r3 < 0.03 THEN 'review' ELSE 'allow' END AS decision,
           CASE WHEN r2 < 0.0001 THEN 'SELECT employee_id, amount FROM ${TERMS.rare} WHERE approved_by IS NULL AND amount > ' || n
                WHEN r2 < 0.0101 THEN 'INSERT INTO ${TERMS.uncommon} (payment_id, amount) VALUES (' || n || ', ' || (n % 500) || '.00)'
                ELSE CASE t
      ${tmpl}
                END END AS text
      FROM (SELECT g, floor(random() * ${TEMPLATES.length})::int AS t, random() AS r2, random() AS r3, floor(random() * 100000)::int AS n
              FROM generate_series(0, ${total - 1}) g) raw
  ) x JOIN bench_s s ON s.k = x.k;

DO $$ DECLARE i record; BEGIN
  FOR i IN SELECT indexdef FROM bench_idx LOOP EXECUTE i.indexdef; END LOOP;
END $$;
ANALYZE sessions;
ANALYZE statements;
`;
}
