#!/usr/bin/env bash
# Lint every BPMN file under bpmn/ with bpmnlint and the camunda-compat rules for Camunda 8.8.
# Zero errors and zero warnings are required (--max-warnings=0).
#
# The linter is installed from npm, pinned, into .tools/bpmnlint (gitignored) on first use.
# Usage (from anywhere in the repository): scripts/lint-bpmn.sh [file.bpmn ...]
set -euo pipefail

BPMNLINT_VERSION=11.15.0
CAMUNDA_COMPAT_VERSION=2.61.0
ZEEBE_MODDLE_VERSION=2.0.0
TEMPLATES_VALIDATOR_VERSION=2.26.0

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
tools="$repo_root/.tools/bpmnlint"

installed_version() {
    # Prints the installed version of npm package $1 under $tools, or nothing.
    local manifest="$tools/node_modules/$1/package.json"
    [ -f "$manifest" ] && node -p "require(process.argv[1]).version" "$manifest" 2>/dev/null || true
}

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "lint-bpmn: node and npm are required (Node >= 20)" >&2
    exit 2
fi

if [ "$(installed_version bpmnlint)" != "$BPMNLINT_VERSION" ] ||
    [ "$(installed_version bpmnlint-plugin-camunda-compat)" != "$CAMUNDA_COMPAT_VERSION" ] ||
    [ "$(installed_version zeebe-bpmn-moddle)" != "$ZEEBE_MODDLE_VERSION" ]; then
    echo "lint-bpmn: installing bpmnlint $BPMNLINT_VERSION, camunda-compat $CAMUNDA_COMPAT_VERSION, zeebe-bpmn-moddle $ZEEBE_MODDLE_VERSION into .tools/bpmnlint" >&2
    mkdir -p "$tools"
    npm install --prefix "$tools" \
        "bpmnlint@$BPMNLINT_VERSION" \
        "bpmnlint-plugin-camunda-compat@$CAMUNDA_COMPAT_VERSION" \
        "zeebe-bpmn-moddle@$ZEEBE_MODDLE_VERSION" \
        --no-audit --no-fund >&2
fi

if [ "$#" -gt 0 ]; then
    files=("$@")
else
    shopt -s nullglob
    files=(bpmn/*.bpmn)
fi
if [ "${#files[@]}" -eq 0 ]; then
    echo "lint-bpmn: no .bpmn files found under bpmn/" >&2
    exit 2
fi

# bpmnlint resolves plugins and moddle extensions relative to the working directory's
# node_modules, so run it from the tools directory with absolute paths.
abs_files=()
for f in "${files[@]}"; do
    abs_files+=("$(cd "$(dirname "$f")" && pwd)/$(basename "$f")")
done
(cd "$tools" && node "$tools/node_modules/bpmnlint/bin/bpmnlint.js" \
    --config "$repo_root/.bpmnlintrc" --max-warnings=0 "${abs_files[@]}")

# The element templates (bpmn/templates/*.json) against the Zeebe element template schema,
# with the validator Camunda Modeler uses. Skipped when files were named on the command line.
if [ "$#" -gt 0 ]; then
    exit 0
fi
templates_tools="$repo_root/.tools/element-templates"
if [ "$(tools="$templates_tools" installed_version @bpmn-io/element-templates-validator)" != "$TEMPLATES_VALIDATOR_VERSION" ]; then
    echo "lint-bpmn: installing @bpmn-io/element-templates-validator $TEMPLATES_VALIDATOR_VERSION into .tools/element-templates" >&2
    mkdir -p "$templates_tools"
    npm install --prefix "$templates_tools" \
        "@bpmn-io/element-templates-validator@$TEMPLATES_VALIDATOR_VERSION" --no-audit --no-fund >&2
fi
(cd "$templates_tools" && node -e '
const fs = require("fs");
const { validateAllZeebe } = require("@bpmn-io/element-templates-validator");
let failed = false;
for (const file of process.argv.slice(1)) {
  const parsed = JSON.parse(fs.readFileSync(file, "utf8"));
  const result = validateAllZeebe(Array.isArray(parsed) ? parsed : [parsed]);
  for (const r of result.results.filter(r => !r.valid)) {
    failed = true;
    for (const e of r.errors) {
      console.error(`${file}: ${r.object && r.object.id}: ${e.instancePath} ${e.message}`);
    }
  }
}
if (failed) { process.exit(1); }
' "$repo_root"/bpmn/templates/*.json)
echo "lint-bpmn: BPMN and element templates clean" >&2
