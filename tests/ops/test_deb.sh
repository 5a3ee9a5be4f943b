#!/bin/sh
# test_deb.sh BUILD_DIR - build the Debian package with CPack
# (`cpack -G DEB`) into a temporary directory and check with dpkg-deb that
# it holds the daemon, the CLI, the libraries, the header, the pkg-config
# and CMake files, the manual pages and the systemd units, and that its
# dependencies were computed.
set -eu
BUILD=$1
TMP=$(mktemp -d /tmp/ipchub-deb-XXXXXX)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "test_deb: FAIL: $*" >&2; exit 1; }

cpack -G DEB --config "$BUILD/CPackConfig.cmake" -B "$TMP" >"$TMP/cpack.log" 2>&1 ||
	{ cat "$TMP/cpack.log" >&2; fail "cpack -G DEB"; }
DEB=$(ls "$TMP"/ipchub_*.deb 2>/dev/null | head -1)
[ -n "$DEB" ] || { cat "$TMP/cpack.log" >&2; fail "no .deb produced"; }
dpkg-deb --contents "$DEB" >"$TMP/contents"
for f in /bin/ipchubd /bin/ipchub /include/ipchub.h '/libipchub.so.0.1.0' \
	'/libipchub.so.0 -> ' '/libipchub.a' /pkgconfig/ipchub.pc \
	/cmake/ipchub/ipchubConfig.cmake /cmake/ipchub/ipchubTargets.cmake \
	/man/man8/ipchubd.8 /man/man1/ipchub.1 \
	/systemd/system/ipchub.service /systemd/system/ipchub.socket \
	/systemd/user/ipchub.service /systemd/user/ipchub.socket \
	/doc/ipchub/examples/hello.c; do
	grep -q -- "$f" "$TMP/contents" || fail "package lacks $f"
done
# Nothing from the build or test tree.
if grep -E 'test_|bench|fuzz' "$TMP/contents"; then fail "package holds test files"; fi
info=$(dpkg-deb --field "$DEB" Package Version Architecture Depends)
echo "$info" | grep -q '^Package: ipchub$' || fail "Package field: $info"
echo "$info" | grep -q '^Depends:.*libevent' || fail "Depends lacks libevent: $info"
echo "$info" | grep -q '^Depends:.*libinih' || fail "Depends lacks libinih: $info"
echo "test_deb: $(basename "$DEB"): $(wc -l <"$TMP/contents") entries"
