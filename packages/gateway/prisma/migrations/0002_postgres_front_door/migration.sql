-- AlterTable
ALTER TABLE "access_tokens" ADD COLUMN     "groups" TEXT[] DEFAULT ARRAY[]::TEXT[];

-- AlterTable
ALTER TABLE "connections" ADD COLUMN     "database" TEXT;

-- CreateTable
CREATE TABLE "statements" (
    "id" UUID NOT NULL,
    "session_id" UUID NOT NULL,
    "seq" INTEGER NOT NULL,
    "text" TEXT NOT NULL,
    "kind" TEXT NOT NULL,
    "command" TEXT,
    "objects" TEXT[] DEFAULT ARRAY[]::TEXT[],
    "decision" TEXT NOT NULL,
    "rule" TEXT,
    "reason" TEXT,
    "status" TEXT NOT NULL DEFAULT 'pending',
    "started_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "duration_ms" DOUBLE PRECISION,
    "rows" BIGINT,
    "command_tag" TEXT,
    "masked" INTEGER NOT NULL DEFAULT 0,
    "error_code" TEXT,
    "error" TEXT,

    CONSTRAINT "statements_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "policy_versions" (
    "id" UUID NOT NULL,
    "version" INTEGER NOT NULL,
    "files" JSONB NOT NULL,
    "digest" TEXT NOT NULL,
    "created_by" TEXT,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "policy_versions_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "statements_started_at_idx" ON "statements"("started_at");

-- CreateIndex
CREATE UNIQUE INDEX "statements_session_id_seq_key" ON "statements"("session_id", "seq");

-- CreateIndex
CREATE UNIQUE INDEX "policy_versions_version_key" ON "policy_versions"("version");

-- AddForeignKey
ALTER TABLE "statements" ADD CONSTRAINT "statements_session_id_fkey" FOREIGN KEY ("session_id") REFERENCES "sessions"("id") ON DELETE CASCADE ON UPDATE CASCADE;
