-- Database objects schema.prisma cannot express. Every one is created by a
-- migration too (copied there when it was added); migrate.test.ts applies this
-- file after the schema-generated SQL, so migrations and schema still have to
-- agree exactly.

-- Full-text search over statement texts ('simple': no stemming or stop words,
-- SQL is not English). Queries must use this exact expression to use the index.
-- https://www.postgresql.org/docs/current/textsearch-tables.html#TEXTSEARCH-TABLES-INDEX
CREATE INDEX "statements_text_fts_idx" ON "statements" USING gin (to_tsvector('simple'::regconfig, "text"));

-- SIEM outbox: every session start/end and statement record/completion queues
-- one event per enabled sink, in the same transaction as the write itself, so
-- an event exists exactly when its record does (audit/siem/). Statement-level
-- triggers with transition tables: one run per batch INSERT/UPDATE, and when
-- no sink is enabled the cost is one lookup in a tiny table.
-- https://www.postgresql.org/docs/current/sql-createtrigger.html (REFERENCING)
CREATE FUNCTION airlock_audit_sessions_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM audit_sinks WHERE enabled) THEN
    INSERT INTO audit_outbox (sink, event_id, type, payload)
    SELECT k.name, 'session.start:' || n.id, 'session.start',
           to_jsonb(n) - 'chain_hash' - 'end_hash' - 'end_prev_hash'
      FROM new_rows n CROSS JOIN audit_sinks k WHERE k.enabled;
  END IF;
  RETURN NULL;
END $$;

CREATE FUNCTION airlock_audit_sessions_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM audit_sinks WHERE enabled) THEN
    INSERT INTO audit_outbox (sink, event_id, type, payload)
    SELECT k.name, 'session.end:' || n.id, 'session.end',
           to_jsonb(n) - 'chain_hash' - 'end_hash' - 'end_prev_hash'
      FROM new_rows n JOIN old_rows o ON o.id = n.id CROSS JOIN audit_sinks k
     WHERE k.enabled AND o.ended_at IS NULL AND n.ended_at IS NOT NULL;
  END IF;
  RETURN NULL;
END $$;

CREATE FUNCTION airlock_audit_statements_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM audit_sinks WHERE enabled) THEN
    INSERT INTO audit_outbox (sink, event_id, type, payload)
    SELECT k.name, 'statement:' || n.id, 'statement',
           to_jsonb(n) - 'prev_hash' - 'hash' - 'end_prev_hash' - 'end_hash'
      FROM new_rows n CROSS JOIN audit_sinks k WHERE k.enabled;
  END IF;
  RETURN NULL;
END $$;

CREATE FUNCTION airlock_audit_statements_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM audit_sinks WHERE enabled) THEN
    INSERT INTO audit_outbox (sink, event_id, type, payload)
    SELECT k.name, 'statement.end:' || n.id, 'statement.end',
           to_jsonb(n) - 'prev_hash' - 'hash' - 'end_prev_hash' - 'end_hash'
      FROM new_rows n JOIN old_rows o ON o.id = n.id CROSS JOIN audit_sinks k
     WHERE k.enabled AND o.status = 'pending' AND n.status <> 'pending';
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER "sessions_audit_insert" AFTER INSERT ON "sessions"
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION airlock_audit_sessions_insert();
CREATE TRIGGER "sessions_audit_update" AFTER UPDATE ON "sessions"
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION airlock_audit_sessions_update();
CREATE TRIGGER "statements_audit_insert" AFTER INSERT ON "statements"
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION airlock_audit_statements_insert();
CREATE TRIGGER "statements_audit_update" AFTER UPDATE ON "statements"
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION airlock_audit_statements_update();
