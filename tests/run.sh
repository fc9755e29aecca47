#!/usr/bin/env bash
# The whole test suite (every marker), as `make test` runs it after lint and type checks;
# `make test-fast` runs only the unit tests (-m "not kafka and not prometheus and not slow and not
# browser"). Browser tests (marker browser) drive Debian's chromium; they fail instead of skipping
# when it is missing and TICKINDEX_REQUIRE_BROWSER=1.
# Starts the project's Kafka broker (deploy/kafka) unless KAFKA_BOOTSTRAP names one, and stops it
# afterwards if it started it. Tests needing Kafka fail (never skip) when TICKINDEX_REQUIRE_KAFKA=1.
set -euo pipefail
cd "$(dirname "$0")/.."

started_broker=""
if [ -z "${KAFKA_BOOTSTRAP:-}" ]; then
  if ! bash deploy/kafka/kafka.sh status >/dev/null 2>&1; then
    if bash deploy/kafka/kafka.sh start; then
      started_broker=1
    else
      echo "tests/run.sh: the Kafka broker did not start; Kafka tests will fail or skip" >&2
    fi
  fi
  export KAFKA_BOOTSTRAP=127.0.0.1:${KAFKA_PORT:-9092}
fi
stop_broker() {
  if [ -n "$started_broker" ]; then bash deploy/kafka/kafka.sh stop || true; fi
}
trap stop_broker EXIT

.venv/bin/python -m pytest "$@"
