-- AlterTable
ALTER TABLE "connections" ADD COLUMN     "record_mode" TEXT NOT NULL DEFAULT 'closed';

-- AlterTable
ALTER TABLE "sessions" ADD COLUMN     "chain_hash" BYTEA,
ADD COLUMN     "end_hash" BYTEA,
ADD COLUMN     "end_link" INTEGER,
ADD COLUMN     "end_prev_hash" BYTEA,
ADD COLUMN     "groups" TEXT[] DEFAULT ARRAY[]::TEXT[],
ADD COLUMN     "record_mode" TEXT NOT NULL DEFAULT 'closed',
ADD COLUMN     "recording_bytes" BIGINT NOT NULL DEFAULT 0,
ADD COLUMN     "recording_chunks" INTEGER NOT NULL DEFAULT 0,
ADD COLUMN     "recording_storage" TEXT,
ADD COLUMN     "unrecorded" INTEGER NOT NULL DEFAULT 0;

-- AlterTable
ALTER TABLE "statements" ADD COLUMN     "end_hash" BYTEA,
ADD COLUMN     "end_link" INTEGER,
ADD COLUMN     "end_prev_hash" BYTEA,
ADD COLUMN     "hash" BYTEA,
ADD COLUMN     "link" INTEGER,
ADD COLUMN     "prev_hash" BYTEA,
ADD COLUMN     "subject" TEXT NOT NULL DEFAULT '';

-- CreateTable
CREATE TABLE "audit_checkpoints" (
    "id" UUID NOT NULL,
    "session_id" UUID NOT NULL,
    "links" INTEGER NOT NULL,
    "head" BYTEA NOT NULL,
    "kind" TEXT NOT NULL,
    "at" TIMESTAMP(3) NOT NULL,
    "key_id" TEXT NOT NULL,
    "stream" UUID NOT NULL,
    "stream_seq" INTEGER NOT NULL,
    "prev_hash" BYTEA,
    "hash" BYTEA NOT NULL,
    "signature" BYTEA NOT NULL,

    CONSTRAINT "audit_checkpoints_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "audit_keys" (
    "id" TEXT NOT NULL,
    "public_key" TEXT NOT NULL,
    "private_key" BYTEA NOT NULL,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "retired_at" TIMESTAMP(3),

    CONSTRAINT "audit_keys_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "recording_chunks" (
    "session_id" UUID NOT NULL,
    "idx" INTEGER NOT NULL,
    "link" INTEGER NOT NULL,
    "prev_hash" BYTEA NOT NULL,
    "hash" BYTEA NOT NULL,
    "at" TIMESTAMP(3) NOT NULL,
    "frames" INTEGER NOT NULL,
    "raw_bytes" INTEGER NOT NULL,
    "digest" BYTEA NOT NULL,
    "storage" TEXT NOT NULL,
    "location" TEXT,
    "data" BYTEA,

    CONSTRAINT "recording_chunks_pkey" PRIMARY KEY ("session_id","idx")
);

-- CreateTable
CREATE TABLE "audit_tombstones" (
    "id" UUID NOT NULL,
    "session_id" UUID NOT NULL,
    "at" TIMESTAMP(3) NOT NULL,
    "reason" TEXT NOT NULL,
    "links" JSONB NOT NULL,
    "key_id" TEXT NOT NULL,
    "signature" BYTEA NOT NULL,

    CONSTRAINT "audit_tombstones_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "audit_sinks" (
    "name" TEXT NOT NULL,
    "enabled" BOOLEAN NOT NULL DEFAULT true,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "audit_sinks_pkey" PRIMARY KEY ("name")
);

-- CreateTable
CREATE TABLE "audit_outbox" (
    "id" BIGSERIAL NOT NULL,
    "sink" TEXT NOT NULL,
    "event_id" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "payload" JSONB NOT NULL,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "next_attempt_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "leased_until" TIMESTAMP(3),
    "last_error" TEXT,

    CONSTRAINT "audit_outbox_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "audit_checkpoints_session_id_links_idx" ON "audit_checkpoints"("session_id", "links");

-- CreateIndex
CREATE INDEX "audit_checkpoints_at_idx" ON "audit_checkpoints"("at");

-- CreateIndex
CREATE UNIQUE INDEX "audit_checkpoints_stream_stream_seq_key" ON "audit_checkpoints"("stream", "stream_seq");

-- CreateIndex
CREATE INDEX "audit_tombstones_session_id_idx" ON "audit_tombstones"("session_id");

-- CreateIndex
CREATE INDEX "audit_outbox_sink_next_attempt_at_id_idx" ON "audit_outbox"("sink", "next_attempt_at", "id");

-- CreateIndex
CREATE INDEX "statements_subject_started_at_idx" ON "statements"("subject", "started_at");

-- AddForeignKey
ALTER TABLE "audit_checkpoints" ADD CONSTRAINT "audit_checkpoints_session_id_fkey" FOREIGN KEY ("session_id") REFERENCES "sessions"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "recording_chunks" ADD CONSTRAINT "recording_chunks_session_id_fkey" FOREIGN KEY ("session_id") REFERENCES "sessions"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "audit_tombstones" ADD CONSTRAINT "audit_tombstones_session_id_fkey" FOREIGN KEY ("session_id") REFERENCES "sessions"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- Objects beyond schema.prisma (prisma/raw-objects.sql)
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
