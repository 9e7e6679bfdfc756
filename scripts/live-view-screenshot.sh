#!/usr/bin/env bash
# Renders what `c8dr rehearse` shows on a terminal while it runs (the live view with its spinner)
# to docs/img/rehearse-live.png: the rehearsal runs in a tmux pane (a real terminal), the pane is
# captured with its colours while a verification loop waits, turned into HTML and shot in
# headless Chromium. Needs tmux and /usr/bin/chromium (Debian packages tmux, chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in tmux /usr/bin/chromium; do
  command -v "$tool" >/dev/null || { echo "error: $tool is missing (apt-get install ${tool##*/})" >&2; exit 1; }
done
cargo build --quiet
target_dir="${CARGO_TARGET_DIR:-target}"
work="$(mktemp -d)"
session="c8dr-live-$$"
trap 'tmux kill-session -t "$session" 2>/dev/null || true; rm -rf "$work"' EXIT
tmux new-session -d -s "$session" -x 130 -y 42 \
  "$PWD/$target_dir/debug/c8dr rehearse --speed 10 2>&1; sleep 30"
# wait until the failback's restore is being watched (a spinner line is up), then capture
for _ in $(seq 1 240); do
  if tmux capture-pane -p -t "$session" | grep -q "Await restore"; then break; fi
  sleep 0.5
done
sleep 1
tmux capture-pane -e -p -t "$session" > "$work/pane.txt"
python3 - "$work/pane.txt" "$work/pane.html" <<'PY'
import html, re, sys
text = open(sys.argv[1], encoding="utf-8", errors="replace").read()
colours = {"30": "#3b3b3b", "31": "#e06c75", "32": "#98c379", "33": "#e5c07b", "34": "#61afef",
           "35": "#c678dd", "36": "#56b6c2", "37": "#dcdfe4", "90": "#7f848e", "91": "#e06c75",
           "92": "#98c379", "93": "#e5c07b", "94": "#61afef", "95": "#c678dd", "96": "#56b6c2"}
out, open_spans = [], 0
for part in re.split(r"(\x1b\[[0-9;]*m)", text):
    m = re.fullmatch(r"\x1b\[([0-9;]*)m", part)
    if not m:
        out.append(html.escape(part))
        continue
    codes = [c for c in m.group(1).split(";") if c] or ["0"]
    style = []
    for c in codes:
        if c == "0":
            out.append("</span>" * open_spans); open_spans = 0
        elif c == "1":
            style.append("font-weight:bold")
        elif c == "2":
            style.append("opacity:.7")
        elif c in colours:
            style.append(f"color:{colours[c]}")
    if style:
        out.append(f'<span style="{";".join(style)}">'); open_spans += 1
out.append("</span>" * open_spans)
page = ("<!doctype html><meta charset=utf-8><body style='margin:0;background:#1e2127'>"
        "<pre style='margin:0;padding:16px;color:#dcdfe4;font:14px/1.35 DejaVu Sans Mono,monospace'>"
        + "".join(out) + "</pre>")
open(sys.argv[2], "w", encoding="utf-8").write(page)
PY
mkdir -p docs/img
profile="$work/profile"
/usr/bin/chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$profile" --screenshot="$PWD/docs/img/rehearse-live.png" --window-size=1100,820 \
  "file://$work/pane.html" 2>/dev/null
echo "wrote docs/img/rehearse-live.png"
