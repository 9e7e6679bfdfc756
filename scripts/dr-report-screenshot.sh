#!/usr/bin/env bash
# Renders the DR report of a rehearsal (failover + failback) in headless Chromium:
# docs/report-sample.html and docs/img/dr-report.png (docs/report.md shows both).
# Needs /usr/bin/chromium (Debian: apt-get install chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x /usr/bin/chromium ] || { echo "error: /usr/bin/chromium is missing (apt-get install chromium)" >&2; exit 1; }
cargo build --quiet
mkdir -p docs/img
target_dir="${CARGO_TARGET_DIR:-target}"
"$target_dir/debug/c8dr" rehearse --quiet --speed 200 --report docs/report-sample.html >/dev/null
profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
/usr/bin/chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$profile" --screenshot=docs/img/dr-report.png --window-size=1280,2000 \
  "file://$PWD/docs/report-sample.html" 2>/dev/null
echo "wrote docs/report-sample.html and docs/img/dr-report.png"
