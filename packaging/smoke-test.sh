#!/usr/bin/env bash
# Checks a built bundle the way a person would first use it, from a folder outside the checkout:
#
#   packaging/smoke-test.sh [BUNDLE_DIR]        (default packaging/dist/sskt-studio)
#
# 1. `sskt --help` and `sskt runs`; 2. one epoch of the demo preset shipped inside the bundle
# (torch, torchvision and the resources all load), once more with two processes; 3. the GUI
# starts and keeps running for 20 s (offscreen, so no display is needed), then is closed.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
BUNDLE="$(cd "${1:-$HERE/dist/sskt-studio}" && pwd)"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
export SSKT_RUNS_DIR="$WORK/runs" SSKT_STUDIO_CONFIG_DIR="$WORK/config"

timed() { local t0; t0=$(date +%s.%N); "$@"; echo "   ($(printf '%.1f' "$(echo "$(date +%s.%N) - $t0" | bc)") s)" >&2; }

echo "== sskt --help"
timed "$BUNDLE/sskt" --help >/dev/null
echo "== sskt runs"
timed "$BUNDLE/sskt" runs

PRESETS="$BUNDLE/_internal/sskt_resources/presets"
PRESET="$PRESETS/demo.yaml"
[[ -f "$PRESET" ]] || PRESET="$(ls "$PRESETS"/*.yaml | head -n1)"
echo "== sskt train $(basename "$PRESET") for one epoch"
timed "$BUNDLE/sskt" train "$PRESET" --set train.epochs=1 --runs-dir "$WORK/runs" 2>&1 | tail -n 4

# Multi-process runs start this program again instead of `python -m` (a bundle has no python):
# torchrun, then each rank, through `--sskt-run-module` (sskt_engine/child_process.py).
echo "== sskt train --nproc 2 (torchrun and its two ranks run by the bundle's own program)"
timed "$BUNDLE/sskt" train "$PRESET" --nproc 2 --set train.epochs=1 --set train.device=cpu \
    --set data.labels_per_class=20 --runs-dir "$WORK/runs" 2>&1 | tail -n 2
echo "== sskt-studio --sskt-run-module sskt_engine.cli runs (how the GUI starts a multi-process run)"
timed "$BUNDLE/sskt-studio" --sskt-run-module sskt_engine.cli runs --runs-dir "$WORK/runs"

echo "== sskt-studio (offscreen, 20 s)"
set +e
QT_QPA_PLATFORM=offscreen timeout 20 "$BUNDLE/sskt-studio" >"$WORK/gui.log" 2>&1
rc=$?
set -e
if [[ $rc -ne 124 ]]; then
    echo "the GUI exited early with status $rc:"; cat "$WORK/gui.log"; exit 1
fi
echo "   still running after 20 s: ok"
echo "smoke test passed: $BUNDLE"
