#!/usr/bin/env bash
# The test suite; `make test` runs it after lint and type checks.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python -m pytest "$@"
