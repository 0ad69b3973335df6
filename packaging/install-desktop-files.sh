#!/usr/bin/env bash
# Installs the desktop entry, the AppStream metainfo and the app icon (SVG + PNG sizes, taken
# from resources/icons/) so menus and software centres show SSKT Studio.
#
#   packaging/install-desktop-files.sh                       # for you: under ~/.local
#   PREFIX=/usr DESTDIR=pkgroot packaging/install-desktop-files.sh   # distribution packages
#   EXEC=/opt/sskt-studio/sskt-studio packaging/install-desktop-files.sh   # the PyInstaller bundle
#
# The program itself comes from `pip install sskt-studio` (puts `sskt-studio` on PATH) or from
# the bundle; with EXEC the entry starts that file instead of looking on PATH.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ICONS="$(dirname "$HERE")/resources/icons"
PREFIX="${PREFIX:-$HOME/.local}"
DEST="${DESTDIR:-}$PREFIX/share"
APP_ID=io.github.sskt_studio.SSKTStudio

install -Dm644 "$HERE/$APP_ID.metainfo.xml" "$DEST/metainfo/$APP_ID.metainfo.xml"
install -Dm644 "$HERE/sskt-studio.desktop" "$DEST/applications/sskt-studio.desktop"
if [[ -n "${EXEC:-}" ]]; then
    sed -i -e "s|^Exec=sskt-studio|Exec=$EXEC|" -e "s|^TryExec=.*|TryExec=$EXEC|" \
        "$DEST/applications/sskt-studio.desktop"
fi
install -Dm644 "$ICONS/sskt-studio.svg" "$DEST/icons/hicolor/scalable/apps/sskt-studio.svg"
for png in "$ICONS"/sskt-studio-*.png; do
    size="${png##*-}"; size="${size%.png}"
    install -Dm644 "$png" "$DEST/icons/hicolor/${size}x${size}/apps/sskt-studio.png"
done

if [[ -z "${DESTDIR:-}" ]]; then  # refresh caches on a live system; a package's hooks do it otherwise
    command -v update-desktop-database >/dev/null && update-desktop-database -q "$DEST/applications" || true
    command -v gtk-update-icon-cache >/dev/null && gtk-update-icon-cache -q -t "$DEST/icons/hicolor" || true
fi
echo "installed under $DEST: applications/sskt-studio.desktop, metainfo/$APP_ID.metainfo.xml, icons/hicolor/*/apps/sskt-studio.*"
