#!/usr/bin/env bash
# Quick start from a clone: install ClearML Session Tray into ./.venv and start it.
# With no ClearML configuration on this machine it starts on the built-in demo server.
#
#   bash installers/quickstart.sh              install (system packages too when run as root) and start
#   bash installers/quickstart.sh --dry-run    install, then print the command it would start
# Environment: VENV (default ./.venv), PYTHON (default python3), QUICKSTART_SKIP_APT=1,
# QUICKSTART_SKIP_INSTALL=1 (the venv is already installed).
set -euo pipefail
cd "$(dirname "$0")/.."

DRY_RUN=0
for arg in "$@"; do
  case "$arg" in
    --dry-run) DRY_RUN=1 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "quickstart: unknown option $arg" >&2; exit 2 ;;
  esac
done

# Qt needs these X11/xcb libraries on a minimal Debian/Ubuntu; desktop installs already have them.
APT_PACKAGES=(python3-venv python3-pip libegl1 libgl1 libfontconfig1 libdbus-1-3
  libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0
  libxcb-render-util0 libxcb-shape0 libxcb-xinerama0 libxcb-xfixes0 libxcb-xkb1 openssh-client)
if command -v apt-get >/dev/null 2>&1 && [ -z "${QUICKSTART_SKIP_APT:-}" ]; then
  missing=()
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO="sudo"
    echo "==> installing system packages: ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
  echo "==> creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
if [ -z "${QUICKSTART_SKIP_INSTALL:-}" ]; then
  echo "==> pip install -e '.[demo]'"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -e '.[demo]'
fi

# `clearml-tray list` exits 2 when there is no usable ClearML configuration: use the demo then.
set +e
"$VENV/bin/clearml-tray" list >/dev/null 2>&1
status=$?
set -e
cmd=("$VENV/bin/clearml-tray")
if [ "$status" = 2 ]; then
  echo "==> no ClearML configuration found: starting on the built-in demo server"
  cmd+=(--demo)
fi
if [ "$DRY_RUN" = 1 ]; then
  printf '%s\n' "${cmd[*]}"
  exit 0
fi
echo "==> starting: ${cmd[*]}  (log: clearml-tray's log folder; quit from the tray menu)"
exec "${cmd[@]}"
