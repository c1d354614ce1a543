-- AlterTable
ALTER TABLE "access_tokens" ADD COLUMN     "login_id" UUID,
ADD COLUMN     "method" TEXT NOT NULL DEFAULT 'admin',
ADD COLUMN     "provider" TEXT,
ADD COLUMN     "service_account_id" UUID,
ADD COLUMN     "type" TEXT NOT NULL DEFAULT 'access',
ADD COLUMN     "user_id" UUID;

-- AlterTable
ALTER TABLE "sessions" ADD COLUMN     "auth_method" TEXT,
ADD COLUMN     "subject_kind" TEXT NOT NULL DEFAULT 'user';

-- CreateTable
CREATE TABLE "users" (
    "id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "provider" TEXT NOT NULL,
    "external_id" TEXT NOT NULL,
    "email" TEXT,
    "display_name" TEXT,
    "groups" TEXT[] DEFAULT ARRAY[]::TEXT[],
    "roles" TEXT[] DEFAULT ARRAY[]::TEXT[],
    "last_login_at" TIMESTAMP(3),
    "deleted_at" TIMESTAMP(3),
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "users_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "service_accounts" (
    "id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "groups" TEXT[] DEFAULT ARRAY[]::TEXT[],
    "roles" TEXT[] DEFAULT ARRAY[]::TEXT[],
    "connections" TEXT[] DEFAULT ARRAY[]::TEXT[],
    "token_ttl_seconds" INTEGER NOT NULL,
    "external_ids" TEXT[] DEFAULT ARRAY[]::TEXT[],
    "description" TEXT,
    "created_by" TEXT,
    "revoked_at" TIMESTAMP(3),
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "service_accounts_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "logins" (
    "id" UUID NOT NULL,
    "user_id" UUID NOT NULL,
    "provider" TEXT NOT NULL,
    "method" TEXT NOT NULL,
    "refresh_hash" TEXT,
    "idp_refresh" BYTEA,
    "expires_at" TIMESTAMP(3) NOT NULL,
    "ended_at" TIMESTAMP(3),
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "logins_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "login_requests" (
    "id" UUID NOT NULL,
    "handle_hash" TEXT NOT NULL,
    "provider" TEXT NOT NULL,
    "kind" TEXT NOT NULL,
    "data" BYTEA NOT NULL,
    "result_hash" TEXT,
    "login_id" UUID,
    "answered_at" TIMESTAMP(3),
    "consumed_at" TIMESTAMP(3),
    "expires_at" TIMESTAMP(3) NOT NULL,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "login_requests_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "auth_events" (
    "id" UUID NOT NULL,
    "at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "type" TEXT NOT NULL,
    "outcome" TEXT NOT NULL,
    "subject" TEXT,
    "provider" TEXT,
    "via" TEXT,
    "code" TEXT,
    "reason" TEXT,
    "client_addr" TEXT,
    "token_id" UUID,

    CONSTRAINT "auth_events_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "users_name_key" ON "users"("name");

-- CreateIndex
CREATE UNIQUE INDEX "users_provider_external_id_key" ON "users"("provider", "external_id");

-- CreateIndex
CREATE UNIQUE INDEX "service_accounts_name_key" ON "service_accounts"("name");

-- CreateIndex
CREATE UNIQUE INDEX "logins_refresh_hash_key" ON "logins"("refresh_hash");

-- CreateIndex
CREATE UNIQUE INDEX "login_requests_handle_hash_key" ON "login_requests"("handle_hash");

-- CreateIndex
CREATE UNIQUE INDEX "login_requests_result_hash_key" ON "login_requests"("result_hash");

-- CreateIndex
CREATE INDEX "login_requests_expires_at_idx" ON "login_requests"("expires_at");

-- CreateIndex
CREATE INDEX "auth_events_at_idx" ON "auth_events"("at");

-- CreateIndex
CREATE INDEX "auth_events_subject_at_idx" ON "auth_events"("subject", "at");

-- CreateIndex
CREATE INDEX "access_tokens_login_id_idx" ON "access_tokens"("login_id");

-- AddForeignKey
ALTER TABLE "access_tokens" ADD CONSTRAINT "access_tokens_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "access_tokens" ADD CONSTRAINT "access_tokens_service_account_id_fkey" FOREIGN KEY ("service_account_id") REFERENCES "service_accounts"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "access_tokens" ADD CONSTRAINT "access_tokens_login_id_fkey" FOREIGN KEY ("login_id") REFERENCES "logins"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "logins" ADD CONSTRAINT "logins_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE CASCADE;
