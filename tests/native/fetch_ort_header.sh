#!/usr/bin/env bash
# Fetches ONNX Runtime's official C API header (Debian's libonnxruntime-dev) into a cache
# folder, for tests/test_ort_slots.py, without touching the system: a private apt
# configuration (its own sources, lists and cache under DEST) downloads the .deb, verified
# against Debian's signed index, and dpkg-deb unpacks it under DEST.
# Debian 13 (trixie) and later ship the package; on older releases the trixie index is used.
#
# Usage: tests/native/fetch_ort_header.sh [DEST]   (default: build/onnxruntime-header)
# Prints the include folder (for IR_ORT_INCLUDE) on its last line. Idempotent: a second run,
# or a system with the package installed, only prints it. Exits 0 with a message (on stderr)
# when it cannot fetch; the test then skips.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
DEST="$(realpath -m "${1:-$ROOT/build/onnxruntime-header}")"
INCLUDE="$DEST/root/usr/include/onnxruntime"
SUITE="${IR_ORT_DEBIAN_SUITE:-trixie}"
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

# Already fetched, or installed system-wide (Debian 13+: apt-get install libonnxruntime-dev).
for dir in "$INCLUDE" /usr/include/onnxruntime; do
  if [ -f "$dir/onnxruntime_c_api.h" ]; then
    echo "$dir"
    exit 0
  fi
done
give_up() {
  echo "fetch_ort_header: $1; tests/test_ort_slots.py will skip" >&2
  exit 0
}
command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null || give_up "apt-get or dpkg-deb is missing (not a Debian system)"
[ -r "$KEYRING" ] || give_up "$KEYRING is missing (install debian-archive-keyring)"

APT="$DEST/apt"
mkdir -p "$APT/lists/partial" "$APT/cache/archives/partial" "$APT/parts" "$DEST/deb"
echo "deb [signed-by=$KEYRING] http://deb.debian.org/debian $SUITE main" >"$APT/sources.list"
# Only our sources (an empty parts folder hides the system's), no translations, no lock on
# the system's lists; root keeps the download (apt's _apt user may not write to DEST).
OPTS=(-o "Dir::Etc::SourceList=$APT/sources.list" -o "Dir::Etc::SourceParts=$APT/parts"
      -o "Dir::State::Lists=$APT/lists" -o "Dir::Cache=$APT/cache" -o Acquire::Languages=none
      -o Debug::NoLocking=1)
[ "$(id -u)" -eq 0 ] && OPTS+=(-o APT::Sandbox::User=root)

apt-get "${OPTS[@]}" -qq update >&2 || give_up "apt-get update of Debian $SUITE failed (offline?)"
rm -f "$DEST"/deb/*.deb
(cd "$DEST/deb" && apt-get "${OPTS[@]}" -qq download libonnxruntime-dev >&2) || give_up "apt-get download libonnxruntime-dev failed"
rm -rf "$DEST/root"
dpkg-deb -x "$DEST"/deb/libonnxruntime-dev_*.deb "$DEST/root"
rm -rf "$APT/lists" "$APT/cache"  # 20 MB of index, needed no more
[ -f "$INCLUDE/onnxruntime_c_api.h" ] || give_up "the package holds no onnxruntime_c_api.h"
echo "$INCLUDE"
