#!/usr/bin/env bash
# Builds a self-contained Linux bundle of medae in dist/medae/ with PyInstaller:
#   bash installer/build_bundle.sh
# The bundle carries the Python runtime, torch (the build in .venv), Qt, the shipped model, the samples,
# and the X11 libraries Qt's xcb plugin needs at start (libxcb-cursor0 and friends), so that it starts
# on a desktop Linux that lacks them. Run installer/setup.sh first.
set -euo pipefail
cd "$(dirname "$0")/.."
VPY=.venv/bin/python
[[ -x $VPY ]] || { echo "run installer/setup.sh first" >&2; exit 2; }
"$VPY" -m pip install -q "pyinstaller>=6.0" 2>&1 | grep -v '^WARNING: Location' || true

# Shipped models: only their released files (card, weights, notices), never training state.
models=()
for f in models/*/card.json models/*/weights.safetensors models/*/NOTICE.txt models/*/README.md; do
  [[ -f $f ]] && models+=(--add-data "$PWD/$f:$(dirname "$f")")
done

# The libraries behind Qt's xcb platform plugin, taken from the build machine's Debian packages.
XCB_DEBS="libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-randr0
 libxcb-shape0 libxcb-xinerama0 libxcb-xkb1 libxkbcommon-x11-0"
libs=()
for deb in $XCB_DEBS; do
  if ! dpkg -s "$deb" >/dev/null 2>&1; then
    echo "build_bundle: Debian package $deb is missing (apt-get install $deb)" >&2; exit 2
  fi
  while read -r f; do
    [[ $f == *.so.* && -f $f ]] && libs+=(--add-binary "$f:.")
  done < <(dpkg -L "$deb")
done

"$VPY" -m PyInstaller --noconfirm --clean --name medae --distpath dist --workpath build/pyinstaller \
  --specpath build/pyinstaller \
  --collect-all medae --collect-all monai --collect-data nibabel --collect-data pydicom \
  --collect-submodules pydicom --collect-all highdicom --collect-all SimpleITK \
  --collect-all pylibjpeg --collect-all openjpeg --collect-all rle --collect-all gdcm --collect-all imagecodecs \
  --hidden-import medae.gui.app --add-data "$PWD/resources:resources" \
  "${models[@]}" "${libs[@]}" "$PWD/installer/bundle_entry.py"
echo "bundle in dist/medae (run dist/medae/medae --help, or dist/medae/medae view)"
