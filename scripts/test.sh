#!/usr/bin/env bash
# The one command that runs every test: BPMN lint (installs its pinned npm tools itself),
# then all Rust tests (unit, integration, end-to-end rehearsals).
set -euo pipefail
cd "$(dirname "$0")/.."

command -v npm >/dev/null || { echo "error: npm is required (Node 20): BPMN lint and the proto wire-compatibility test use it" >&2; exit 1; }

# tests/report_html.rs renders the DR report in headless Chromium (Debian's package)
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "== installing chromium (apt-get) =="
  apt-get install -y --no-install-recommends chromium >/dev/null || { apt-get update >/dev/null && apt-get install -y --no-install-recommends chromium >/dev/null; }
fi

echo "== bpmnlint (camunda-compat 8.8) =="
bash scripts/lint-bpmn.sh

# tests/lab_kubernetes.rs checks the lab's Kubernetes API with a real client (kubectl)
if ! command -v kubectl >/dev/null; then
  echo "== installing kubectl (Debian package kubernetes-client) =="
  apt-get install -y --no-install-recommends kubernetes-client \
    || { apt-get update && apt-get install -y --no-install-recommends kubernetes-client; }
fi

echo "== cargo test =="
cargo test --locked --all-targets --no-fail-fast "$@"
