#!/bin/sh
# Runs the Prisma CLI from the gateway package with the environment it needs.
# Why: schema.prisma reads DATABASE_URL (env("DATABASE_URL")) and the CLI
# refuses to load the schema without it, even for `generate` and
# `migrate diff`, which never connect to it (prisma.config.ts gives the CLI an
# in-memory PGlite instead). A dummy URL keeps those commands offline.
# Usage: sh scripts/prisma.sh generate | migrate diff ...
set -eu
cd "$(dirname "$0")/.."
export DATABASE_URL="${DATABASE_URL:-postgresql://airlock@127.0.0.1:9/unused}"
# Keep the CLI from phoning home (update checks) on an offline machine.
export CHECKPOINT_DISABLE=1 PRISMA_HIDE_UPDATE_MESSAGE=1
exec ./node_modules/.bin/prisma "$@"
