#!/usr/bin/env bash
# Build dist/ClearML-Session-Tray-<version>.dmg: the PyInstaller .app (LSUIElement: a menu-bar
# only app, no Dock icon) in a compressed disk image. Run on macOS after `pip install -e ".[test]"`.
# The menu-bar icon: Qt's tray icon on macOS looks best as a template image; the app marks its
# icons as mask (template) icons when running on macOS.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python}
VERSION=$("$PYTHON" -c 'import tray_app; print(tray_app.__version__)')
"$PYTHON" -m PyInstaller --noconfirm --log-level WARN \
  --distpath build/pyinstaller/dist --workpath build/pyinstaller/work \
  installers/pyinstaller/clearml-tray.spec
APP="build/pyinstaller/dist/ClearML Session Tray.app"
"$APP/Contents/MacOS/clearml-tray" self-test
mkdir -p dist build/dmg
rm -rf build/dmg/*
cp -R "$APP" build/dmg/
ln -s /Applications build/dmg/Applications
hdiutil create -volname "ClearML Session Tray" -srcfolder build/dmg -ov -format UDZO \
  "dist/ClearML-Session-Tray-${VERSION}.dmg"
echo "dist/ClearML-Session-Tray-${VERSION}.dmg"
