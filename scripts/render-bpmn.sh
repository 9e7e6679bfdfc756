#!/usr/bin/env bash
# Renders the BPMN diagrams and the forms to PNG (.tools/render/out/) with the bpmn-js and
# form-js viewers in headless Chromium, to look at them as an operator would in Modeler,
# Operate and Tasklist. A developer tool, not part of CI.
#
# Needs node/npm and Debian's chromium (apt-get install -y chromium); the npm packages are
# installed, pinned, into .tools/render (gitignored) on first use. No browser is downloaded.
# Usage (from anywhere in the repository): scripts/render-bpmn.sh
set -euo pipefail

BPMN_JS_VERSION=18.31.1
FORM_JS_VERSION=1.23.0
PLAYWRIGHT_CORE_VERSION=1.65.1

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$repo_root/.tools/render"

if [ ! -x /usr/bin/chromium ]; then
    echo "render-bpmn: /usr/bin/chromium missing: apt-get update && apt-get install -y chromium" >&2
    exit 2
fi

installed_version() {
    local manifest="$tools/node_modules/$1/package.json"
    [ -f "$manifest" ] && node -p "require(process.argv[1]).version" "$manifest" 2>/dev/null || true
}

if [ "$(installed_version bpmn-js)" != "$BPMN_JS_VERSION" ] ||
    [ "$(installed_version @bpmn-io/form-js)" != "$FORM_JS_VERSION" ] ||
    [ "$(installed_version playwright-core)" != "$PLAYWRIGHT_CORE_VERSION" ]; then
    echo "render-bpmn: installing bpmn-js, @bpmn-io/form-js, playwright-core into .tools/render" >&2
    mkdir -p "$tools"
    [ -f "$tools/package.json" ] || echo '{"private":true}' >"$tools/package.json"
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --prefix "$tools" --no-audit --no-fund \
        "bpmn-js@$BPMN_JS_VERSION" "@bpmn-io/form-js@$FORM_JS_VERSION" \
        "playwright-core@$PLAYWRIGHT_CORE_VERSION" >&2
fi

node "$repo_root/bpmn/tools/render.mjs" "$repo_root" "$tools" "$repo_root/.tools/render/out"
