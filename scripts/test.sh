#!/usr/bin/env bash
# The whole test suite: once on SQLite (the embedded default), then the Django
# apps again on the PostgreSQL at 127.0.0.1:5432. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then "$PY" -m venv .venv; fi
.venv/bin/pip install -q --disable-pip-version-check -e '.[test]'
export PATH="$PWD/.venv/bin:$PATH"
export KECHUANG_PG_URL=${KECHUANG_PG_URL:-postgres://postgres@127.0.0.1:5432/test}

echo "== ruff"
ruff check src tests benchmarks
echo "== pytest on SQLite (rules engine, all apps, browser)"
env -u DATABASE_URL pytest -q "$@"
echo "== pytest on PostgreSQL (Django apps)"
DATABASE_URL="$KECHUANG_PG_URL" KECHUANG_TEST_DB_NAME="test_kechuang_$$" \
  pytest -q -m "not browser and not spark" \
  --ignore=src/kechuang/rules "$@"
