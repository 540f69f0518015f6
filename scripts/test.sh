#!/bin/sh
# `npm test`: every test file, then the NAT lab serially (its namespaces and processes
# compete for the machine). Both suites always run, so a failure in the first does not
# hide the lab's results; the exit status fails if either failed.
set -u
npx vitest run --exclude 'test/lab/**' "$@"
unit=$?
npx vitest run test/lab --no-file-parallelism "$@"
lab=$?
[ "$unit" -eq 0 ] && [ "$lab" -eq 0 ] || { echo "npm test: unit/e2e suite exit $unit, NAT lab exit $lab" >&2; exit 1; }
