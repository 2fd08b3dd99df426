#!/bin/sh
# The doctor CronJob's run (installed in the image as mlops-trace-doctor-reports): collect a redacted bundle of
# $SCOPE (default every namespace), judge it twice offline (SARIF for code scanning, JSON for scripts) into
# $REPORTS_DIR/<UTC time>/, point $REPORTS_DIR/latest at it and keep the newest $KEEP runs.
# doctor's exit 1 (findings) is a successful run; 2 (could not run) fails the Job.
set -u
reports="${REPORTS_DIR:-/reports}"
run="$reports/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$run" || exit 2
# shellcheck disable=SC2086 # SCOPE holds several flags (-n a -n b)
mlops-trace collect ${SCOPE:---all-namespaces} "$run/bundle.tar.gz" >"$run/collect.txt" || exit 2
for format in sarif json; do
  mlops-trace doctor --bundle "$run/bundle.tar.gz" -o "$format" >"$run/doctor.$format"
  status=$?
  [ "$status" -le 1 ] || exit "$status"
done
ln -sfn "$(basename "$run")" "$reports/latest"
ls -1d "$reports"/2*Z | sort | head -n "-${KEEP:-48}" | xargs -r rm -rf
echo "mlops-trace: reports in $run"
