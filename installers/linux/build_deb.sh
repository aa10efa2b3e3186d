#!/usr/bin/env bash
# Build dist/clearml-tray_<version>_<arch>.deb: the PyInstaller bundle in /opt/clearml-tray,
# /usr/bin/clearml-tray, a desktop entry and hicolor icons. One command from a clean clone
# (after `pip install -e '.[test]'`, which brings PyInstaller):
#   bash installers/linux/build_deb.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python}
VERSION=$("$PYTHON" -c 'import tray_app; print(tray_app.__version__)')
ARCH=$(dpkg --print-architecture)
NAME="clearml-tray_${VERSION}_${ARCH}"
for png in resources/icons/png/*/clearml-tray-ok.png; do
  [ -f "$png" ] || { echo "build_deb: resources/icons/png is missing (run resources/icons/render.py)" >&2; exit 1; }
done

echo "==> PyInstaller bundle"
"$PYTHON" -m PyInstaller --noconfirm --log-level WARN \
  --distpath build/pyinstaller/dist --workpath build/pyinstaller/work \
  installers/pyinstaller/clearml-tray.spec

echo "==> package tree"
ROOT="build/deb/$NAME"
rm -rf "$ROOT"
mkdir -p "$ROOT/DEBIAN" "$ROOT/opt" "$ROOT/usr/bin" "$ROOT/usr/share/applications" \
  "$ROOT/usr/share/icons/hicolor/scalable/apps" "$ROOT/usr/share/doc/clearml-tray"
cp -a build/pyinstaller/dist/clearml-tray "$ROOT/opt/clearml-tray"
ln -s /opt/clearml-tray/clearml-tray "$ROOT/usr/bin/clearml-tray"
install -m 644 installers/linux/clearml-tray.desktop "$ROOT/usr/share/applications/"
for dir in resources/icons/png/*/; do
  size=$(basename "$dir")
  mkdir -p "$ROOT/usr/share/icons/hicolor/${size}x${size}/apps"
  install -m 644 "$dir/clearml-tray-ok.png" "$ROOT/usr/share/icons/hicolor/${size}x${size}/apps/clearml-tray.png"
done
install -m 644 resources/icons/clearml-tray-ok.svg "$ROOT/usr/share/icons/hicolor/scalable/apps/clearml-tray.svg"
cat > "$ROOT/usr/share/doc/clearml-tray/README.Debian" <<'DOC'
ClearML Session Tray is not started on login by default: turn on
Settings -> "Start ClearML Session Tray when I log in" (it writes
~/.config/autostart/clearml-tray.desktop for your user).
DOC
SIZE=$(du -sk "$ROOT" | cut -f1)
cat > "$ROOT/DEBIAN/control" <<CONTROL
Package: clearml-tray
Version: ${VERSION}
Architecture: ${ARCH}
Maintainer: ClearML Session Tray developers <clearml-tray@localhost>
Installed-Size: ${SIZE}
Depends: libxcb-cursor0, libxkbcommon-x11-0, libegl1, libfontconfig1, libdbus-1-3
Recommends: openssh-client
Section: devel
Priority: optional
Homepage: https://github.com/clearml-session-tray/clearml-session-tray
Description: ClearML interactive sessions in the system tray
 Lists your live ClearML sessions with machine metrics, starts new ones from
 presets, keeps the clearml-session SSH tunnels running, notifies you when a
 session is ready, and opens VS Code on it over Remote-SSH.
CONTROL

echo "==> dpkg-deb"
mkdir -p dist
# gzip: a few seconds on two cores where the default xz takes minutes for ~270 MB of bundle.
dpkg-deb --root-owner-group -Zgzip -z6 --build "$ROOT" "dist/$NAME.deb" >/dev/null
echo "dist/$NAME.deb"
