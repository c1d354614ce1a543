#!/usr/bin/env bash
# The README's first command: install, build and start `airlock dev`
# (gateway + agent + embedded store + demo Postgres with fake customers).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/env.sh
pnpm install --frozen-lockfile
pnpm build
exec node packages/cli/dist/main.js dev "$@"
