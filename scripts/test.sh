#!/bin/sh
# `npm test`: every test file, then the NAT lab serially (its namespaces and processes
# compete for the machine). Both suites always run, so a failure in the first does not
# hide the lab's results; the exit status fails if either failed, and the last lines name
# every failed test (a long log's tail is often all a CI page shows).
set -u
reports=$(mktemp -d)
trap 'rm -rf "$reports"' EXIT
npx vitest run --exclude 'test/lab/**' --reporter=default --reporter=json --outputFile.json="$reports/unit.json" "$@"
unit=$?
npx vitest run test/lab --no-file-parallelism --reporter=default --reporter=json --outputFile.json="$reports/lab.json" "$@"
lab=$?
if [ "$unit" -ne 0 ] || [ "$lab" -ne 0 ]; then
  node dist/scripts/failed-tests.js "$reports/unit.json" "$reports/lab.json" >&2
  echo "npm test: unit/e2e suite exit $unit, NAT lab exit $lab" >&2
  exit 1
fi
