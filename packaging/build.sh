#!/usr/bin/env bash
# Builds the one-folder desktop bundle: packaging/dist/sskt-studio/{sskt-studio,sskt}.
#
#   packaging/build.sh
#
# Steps: a clean venv (packaging/build/venv), the project's wheel built from the checkout,
# that wheel + PyInstaller installed into the venv, then `pyinstaller packaging/sskt-studio.spec`.
# The bundle holds whatever torch the venv gets, so choose it first:
#
#   SSKT_TORCH        pip requirements installed before the project, e.g.
#                     "torch==2.13.0+cpu torchvision==0.28.0" (a CPU-only bundle, ~1 GB
#                     instead of ~5 GB with CUDA). Empty: whatever pip resolves for the
#                     project's own dependencies (on Linux x86-64 from PyPI: CUDA builds).
#   SSKT_TORCH_INDEX  index for those requirements, e.g. https://download.pytorch.org/whl/cpu
#   PYTHON            interpreter for the venv (default python3; needs a shared libpython)
#   SSKT_BUILD_DIR    where the venv and PyInstaller's work files go (default packaging/build)
#   SSKT_DIST_DIR     where the bundle goes (default packaging/dist)
#   SSKT_KEEP_VENV=1  reuse the venv of the last build (only the project is reinstalled):
#                     for iterating on the spec; a release build starts clean
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(dirname "$HERE")"
PYTHON="${PYTHON:-python3}"
BUILD="${SSKT_BUILD_DIR:-$HERE/build}"
DIST="${SSKT_DIST_DIR:-$HERE/dist}"
VENV="$BUILD/venv"
started=$(date +%s)

step() { printf '\n== %s (%ss)\n' "$*" "$(( $(date +%s) - started ))"; }

PIP=("$VENV/bin/python" -m pip install --quiet)
rm -rf "$BUILD/work" "$BUILD/wheel" "$BUILD/src"
if [[ "${SSKT_KEEP_VENV:-}" == 1 && -x "$VENV/bin/pyinstaller" ]]; then
    step "reusing the build venv: $VENV"
else
    step "clean build venv: $VENV"
    rm -rf "$VENV"
    mkdir -p "$BUILD"
    "$PYTHON" -m venv "$VENV"
    "${PIP[@]}" --upgrade pip setuptools wheel
    if [[ -n "${SSKT_TORCH:-}" ]]; then
        step "torch: $SSKT_TORCH"
        # shellcheck disable=SC2086 # SSKT_TORCH is a list of requirements
        "${PIP[@]}" ${SSKT_TORCH_INDEX:+--index-url "$SSKT_TORCH_INDEX"} $SSKT_TORCH
    fi
fi

step "project wheel"
# Build from a copy of what the wheel needs, so setuptools' build/ and *.egg-info never land
# in the checkout (other people may be working in it).
mkdir -p "$BUILD/src"
cp -a "$ROOT/pyproject.toml" "$ROOT/README.md" "$BUILD/src/"
for dir in app sskt_engine resources; do
    cp -a "$ROOT/$dir" "$BUILD/src/"
done
find "$BUILD/src" -name __pycache__ -prune -exec rm -rf {} +
"$VENV/bin/python" -m pip wheel --quiet --no-deps --no-build-isolation -w "$BUILD/wheel" "$BUILD/src"
ls -l "$BUILD"/wheel/*.whl

step "install the wheel and PyInstaller"
"${PIP[@]}" --force-reinstall --no-deps "$BUILD"/wheel/*.whl
"${PIP[@]}" "$BUILD"/wheel/*.whl "pyinstaller>=6.10" "pyinstaller-hooks-contrib>=2024.8"
"$VENV/bin/python" -m pip list --format=freeze | grep -iE '^(torch|torchvision|pyside6|pyqtgraph|numpy|pyinstaller)' || true

step "pyinstaller"
mkdir -p "$DIST"
# Run from the build folder so the checkout's own packages never shadow the installed wheel.
(cd "$BUILD" && "$VENV/bin/pyinstaller" --noconfirm --clean --log-level WARN \
    --distpath "$DIST" --workpath "$BUILD/work" "$HERE/sskt-studio.spec")

step "done"
BUNDLE="$DIST/sskt-studio"
"$BUNDLE/sskt" --help >/dev/null
echo "bundle:      $BUNDLE"
echo "programs:    $BUNDLE/sskt-studio (GUI), $BUNDLE/sskt (CLI)"
echo "bundle size: $(du -sh "$BUNDLE" | cut -f1) ($(du -sb "$BUNDLE" | cut -f1) bytes, $(find "$BUNDLE" -type f | wc -l) files)"
echo "build time:  $(( $(date +%s) - started )) s"
