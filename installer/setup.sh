#!/usr/bin/env bash
# Sets up medae in ./.venv on a fresh Linux machine.
#   bash installer/setup.sh          # the application
#   bash installer/setup.sh --test   # plus what the test suite needs
# Keeps a torch that is already in the venv (e.g. a CUDA build); otherwise installs torch==2.13.0 from the
# package index (MEDAE_TORCH names another requirement; PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu
# gets the CPU-only build on Linux, where PyPI's wheel carries CUDA).
set -euo pipefail
cd "$(dirname "$0")/.."

WITH_TEST=0
[[ "${1:-}" == "--test" ]] && WITH_TEST=1
PY=${PYTHON:-python3}
TORCH_PIN=${MEDAE_TORCH:-torch==2.13.0}

# Qt's xcb platform plugin aborts at start without these; the offscreen plugin needs EGL/fontconfig.
QT_DEBS="libegl1 libgl1 libxkbcommon0 libfontconfig1 libdbus-1-3 libglib2.0-0 libxcb-cursor0 libxcb-icccm4
 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-randr0 libxcb-shape0 libxcb-xinerama0 libxcb-xkb1
 libxkbcommon-x11-0"
TEST_DEBS="dicom3tools xvfb"

need_debs() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  echo "${missing[@]:-}"
}

if command -v apt-get >/dev/null 2>&1; then
  debs="$QT_DEBS"
  [[ $WITH_TEST == 1 ]] && debs="$debs $TEST_DEBS"
  # shellcheck disable=SC2086
  missing=$(need_debs $debs)
  if [[ -n "${missing// /}" ]]; then
    if [[ $(id -u) == 0 ]]; then
      echo "medae setup: installing Debian packages: $missing"
      apt-get update -qq >/dev/null
      # shellcheck disable=SC2086
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
    else
      echo "medae setup: please install these Debian packages (sudo apt-get install $missing)" >&2
    fi
  fi
fi

[[ -x .venv/bin/python ]] || "$PY" -m venv .venv
VPY=.venv/bin/python
"$VPY" -m pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
if ! "$VPY" -c "import torch" >/dev/null 2>&1; then
  "$VPY" -m pip install -q "$TORCH_PIN" 2>&1 | grep -v '^WARNING: Location' || true
fi
extras="train"
[[ $WITH_TEST == 1 ]] && extras="train,test"
"$VPY" -m pip install -q -e ".[${extras}]" 2>&1 | grep -v -e '^WARNING: Location' -e '^  ' -e '^$' -e '!!' || true
"$VPY" -c "import medae, torch; print(f'medae {medae.__version__} ready (torch {torch.__version__})')"
