#!/usr/bin/env bash
# Make sure a PostgreSQL server answers before the suite runs:
# the one IASU_TEST_DATABASE_URL names, else 127.0.0.1:5432; start the installed
# cluster if it is down; install Debian's postgresql if there is none.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
URL="${IASU_TEST_DATABASE_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/postgres}"

answers() {
  "$PY" - "$URL" <<'PY' >/dev/null 2>&1
import sys, psycopg
from sqlalchemy.engine import make_url
u = make_url(sys.argv[1])
psycopg.connect(host=u.host or "127.0.0.1", port=u.port or 5432, user=u.username or "postgres",
                password=u.password or None, dbname=u.database or "postgres", connect_timeout=3).close()
PY
}

wait_for_server() {
  for _ in $(seq 1 30); do answers && return 0; sleep 1; done
  return 1
}

if answers; then exit 0; fi
if [ -n "${IASU_TEST_DATABASE_URL:-}" ]; then
  echo "ensure_postgres: IASU_TEST_DATABASE_URL does not answer" >&2
  exit 1
fi

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
  echo "ensure_postgres: installing Debian's postgresql" >&2
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq postgresql >/dev/null
  installed=1
fi
version=$(ls /etc/postgresql | sort -V | tail -n 1)
if [ "${installed:-0}" = 1 ]; then
  # A throwaway test server: trust loopback connections, as the tests expect.
  hba="/etc/postgresql/$version/main/pg_hba.conf"
  as_root sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
fi
echo "ensure_postgres: starting cluster $version/main" >&2
as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
wait_for_server || { echo "ensure_postgres: PostgreSQL still does not answer on $URL" >&2; exit 1; }
