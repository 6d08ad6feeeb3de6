#!/usr/bin/env bash
# The README's first command: from a fresh Debian machine with Python 3.11 to
# the app serving the demo district at http://127.0.0.1:8000 on SQLite.
# Safe to run again: nothing is duplicated, no data or password is replaced.
# KECHUANG_PORT / KECHUANG_HOST choose where to listen; DATABASE_URL another database.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv"
  if ! "$PY" -m venv .venv 2>/dev/null; then
    # Debian splits venv out of python3; install it when we may.
    rm -rf .venv
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
      "$PY" -m venv .venv
    else
      echo "python3 -m venv failed: install python3-venv (sudo apt-get install python3-venv)" >&2
      exit 1
    fi
  fi
fi
echo "== installing kechuang and its dependencies"
.venv/bin/pip install -q --disable-pip-version-check -e .

export KECHUANG_DATA_DIR=${KECHUANG_DATA_DIR:-$PWD/data}
mkdir -p "$KECHUANG_DATA_DIR"
if [ -z "${KECHUANG_SECRET_KEY:-}" ] && [ ! -s "$KECHUANG_DATA_DIR/secret_key" ]; then
  # Written once; settings.py reads it from the data folder.
  (umask 077 && .venv/bin/python -c "import secrets; print(secrets.token_urlsafe(50))" \
    > "$KECHUANG_DATA_DIR/secret_key")
fi

K=.venv/bin/kechuang
echo "== database"
$K migrate --noinput -v 0
$K collectstatic --noinput -v 0
echo "== accounts and demo district"
$K setup_admin
$K demo
# A voucher program with an approved institution, quotas and one claimed order (once).
$K vouchers_demo
echo "== background worker (免申即享 runs; log in $KECHUANG_DATA_DIR/worker.log)"
# django-tasks' database worker: a run queued or interrupted survives restarts of either process.
$K db_worker --queue-name '*' >>"$KECHUANG_DATA_DIR/worker.log" 2>&1 &
WORKER_PID=$!
trap 'kill "$WORKER_PID" 2>/dev/null' EXIT
echo "== serving (Ctrl-C stops)"
$K serve --host "${KECHUANG_HOST:-127.0.0.1}" --port "${KECHUANG_PORT:-8000}"
