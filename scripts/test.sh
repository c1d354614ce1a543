#!/usr/bin/env bash
# The README's second command, and what CI runs (.ci/run): installs what the
# suite needs, makes sure the local services are up, builds, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/env.sh

# System tools the suite drives for real: psql, OpenSSH (benchmarks), pgbouncer
# (benchmarks), systemd-analyze (deploy check), Chromium (sign-in pages). Installed from Debian when missing.
need=()
command -v psql >/dev/null || need+=(postgresql-client)
command -v systemd-analyze >/dev/null || need+=(systemd)
[ -x /usr/sbin/pgbouncer ] || need+=(pgbouncer)
# Headless Chromium drives identity-provider sign-in pages in the e2e tests (playwright-core).
[ -x /usr/bin/chromium ] || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing ${need[*]} ..." >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "missing: ${need[*]} (install them, or run as root on Debian)" >&2; exit 1
  fi
fi

# Real PostgreSQL on 127.0.0.1:5432 (trust auth), started if it is installed but down.
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  if command -v pg_ctlcluster >/dev/null; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  fi
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
  pg_isready -h 127.0.0.1 -p 5432 || { echo "PostgreSQL is not reachable on 127.0.0.1:5432" >&2; exit 1; }
fi

pnpm install --frozen-lockfile
pnpm build
# Tests are not part of the packages' builds: type-check them too.
node node_modules/typescript/bin/tsc -p tsconfig.tests.json
exec node scripts/vitest-run.mjs "$@"
