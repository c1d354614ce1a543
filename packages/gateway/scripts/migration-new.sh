#!/bin/sh
# Creates the next SQL migration: the difference between what
# prisma/migrations already builds and what prisma/schema.prisma describes.
#   sh scripts/migration-new.sh add_agent_labels
# writes prisma/migrations/NNNN_add_agent_labels/migration.sql (NNNN = last+1).
#
# How it works offline: `prisma migrate diff --from-migrations` replays the
# existing migrations into a shadow database. prisma.config.ts gives the CLI
# in-memory PGlite for that (with a fix for multi-statement scripts), so no
# PostgreSQL server, no network and no `migrate dev` are needed. The gateway
# applies the files itself at start (src/store/migrate.ts); never edit a
# migration once it has shipped: the gateway refuses a changed checksum.
set -eu
cd "$(dirname "$0")/.."

name="${1:-}"
case "$name" in
  ''|*[!a-z0-9_]*) echo "usage: $0 NAME   (lowercase letters, digits, _)" >&2; exit 64 ;;
esac

dir=prisma/migrations
last=$(ls "$dir" | grep -E '^[0-9]{4}_' | sort | tail -n 1 | cut -c1-4)
# Strip leading zeros so sh arithmetic doesn't read 0008 as octal.
n=$(echo "${last:-0}" | sed 's/^0*//')
next=$(printf '%04d' $(( ${n:-0} + 1 )))
out="$dir/${next}_${name}"

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
# --exit-code: 0 = no difference, 2 = difference, anything else = error.
set +e
sh scripts/prisma.sh migrate diff \
  --from-migrations "$dir" --to-schema-datamodel prisma/schema.prisma \
  --script --exit-code >"$tmp"
rc=$?
set -e
case $rc in
  0) echo "schema.prisma and $dir already agree: nothing to do" >&2; exit 0 ;;
  2) ;;
  *) cat "$tmp" >&2; echo "prisma migrate diff failed ($rc)" >&2; exit "$rc" ;;
esac

mkdir "$out"
mv "$tmp" "$out/migration.sql"
trap - EXIT
echo "wrote $out/migration.sql: review it, then run the store tests" >&2
