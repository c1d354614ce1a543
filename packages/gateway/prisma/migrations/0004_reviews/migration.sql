-- CreateTable
CREATE TABLE "reviews" (
    "id" UUID NOT NULL,
    "kind" TEXT NOT NULL,
    "status" TEXT NOT NULL DEFAULT 'pending',
    "requester" TEXT NOT NULL,
    "requester_kind" TEXT NOT NULL,
    "connection_name" TEXT NOT NULL,
    "database" TEXT,
    "session_id" UUID,
    "statement" TEXT,
    "params" JSONB,
    "statement_hash" TEXT,
    "role" TEXT,
    "duration_seconds" INTEGER,
    "reason" TEXT,
    "rule" TEXT,
    "rule_reason" TEXT,
    "reviewer_groups" TEXT[] DEFAULT ARRAY[]::TEXT[],
    "approvals_needed" INTEGER NOT NULL DEFAULT 1,
    "all_groups" BOOLEAN NOT NULL DEFAULT false,
    "scope" TEXT NOT NULL DEFAULT 'once',
    "uses_left" INTEGER NOT NULL DEFAULT 1,
    "valid_until" TIMESTAMP(3),
    "expires_at" TIMESTAMP(3) NOT NULL,
    "decided_at" TIMESTAMP(3),
    "decided_reason" TEXT,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "reviews_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "review_decisions" (
    "id" UUID NOT NULL,
    "review_id" UUID NOT NULL,
    "reviewer" TEXT NOT NULL,
    "scope" TEXT,
    "uses" INTEGER,
    "window_seconds" INTEGER,
    "groups" TEXT[] DEFAULT ARRAY[]::TEXT[],
    "decision" TEXT NOT NULL,
    "reason" TEXT,
    "at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "review_decisions_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "reviews_status_expires_at_idx" ON "reviews"("status", "expires_at");

-- CreateIndex
CREATE INDEX "reviews_requester_created_at_idx" ON "reviews"("requester", "created_at");

-- CreateIndex
CREATE INDEX "reviews_statement_hash_idx" ON "reviews"("statement_hash");

-- CreateIndex
CREATE UNIQUE INDEX "review_decisions_review_id_reviewer_key" ON "review_decisions"("review_id", "reviewer");

-- AddForeignKey
ALTER TABLE "review_decisions" ADD CONSTRAINT "review_decisions_review_id_fkey" FOREIGN KEY ("review_id") REFERENCES "reviews"("id") ON DELETE CASCADE ON UPDATE CASCADE;
