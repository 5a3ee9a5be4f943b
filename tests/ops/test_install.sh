#!/bin/sh
# test_install.sh BUILD_DIR SOURCE_DIR - install ipchub into a temporary
# prefix with `cmake --install --prefix`, check that every file is in
# place, build examples/hello.c against the installed library three ways
# (pkg-config + shared, pkg-config + static libipchub.a, CMake
# find_package(ipchub)), and run each against the installed ipchubd.
set -eu
BUILD=$1
SRC=$2
TMP=$(mktemp -d /tmp/ipchub-install-XXXXXX)
PREFIX=$TMP/prefix
HUB_PID=
cleanup() {
	[ -n "$HUB_PID" ] && kill "$HUB_PID" 2>/dev/null && wait "$HUB_PID" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
fail() { echo "test_install: FAIL: $*" >&2; exit 1; }

cmake --install "$BUILD" --prefix "$PREFIX" >"$TMP/install.log" || fail "cmake --install"
LIBDIR=$(cd "$PREFIX" && dirname "$(find . -name libipchub.so.0 | head -1)")
LIBDIR=$PREFIX/${LIBDIR#./}
for f in bin/ipchubd bin/ipchub include/ipchub.h share/man/man8/ipchubd.8 \
	share/man/man1/ipchub.1 lib/systemd/system/ipchub.service \
	lib/systemd/system/ipchub.socket lib/systemd/user/ipchub.service \
	lib/systemd/user/ipchub.socket share/doc/ipchub/examples/hello.c; do
	[ -e "$PREFIX/$f" ] || fail "missing $f"
done
for f in libipchub.so libipchub.so.0 libipchub.a pkgconfig/ipchub.pc \
	cmake/ipchub/ipchubConfig.cmake cmake/ipchub/ipchubTargets.cmake; do
	[ -e "$LIBDIR/$f" ] || fail "missing $LIBDIR/$f"
done
# The shared library has its SONAME and exports only ipchub_*.
objdump -p "$LIBDIR/libipchub.so" | grep -q 'SONAME *libipchub.so.0' || fail "SONAME"
bad=$(nm -D --defined-only "$LIBDIR/libipchub.so" | awk '$2 ~ /[TDBR]/ && $3 !~ /^ipchub_/ && $3 != "IPCHUB_0" {print $3}')
[ -z "$bad" ] || fail "exported non-API symbols: $bad"
# The static library is self-contained: it holds proto's objects.
ar t "$LIBDIR/libipchub.a" | grep -q '^frame.c.o$' || fail "libipchub.a lacks proto objects"

# pkg-config must point into the prefix we installed to.
export PKG_CONFIG_PATH="$LIBDIR/pkgconfig"
inc=$(pkg-config --variable=includedir ipchub)
[ "$(cd "$inc" && pwd -P)" = "$(cd "$PREFIX/include" && pwd -P)" ] || fail "pc includedir $inc"

CC=${CC:-cc}
# In a sanitizer build the installed libraries are instrumented, so the
# programs linked against them must be too (set by tests/ops/CMakeLists.txt).
SAN=${IPCHUB_TEST_SANITIZE_FLAGS:-}
HELLO=$PREFIX/share/doc/ipchub/examples/hello.c
# shellcheck disable=SC2046
$CC $SAN -Wall -Werror "$HELLO" -o "$TMP/hello-pc" $(pkg-config --cflags --libs ipchub) \
	-Wl,-rpath,"$LIBDIR" || fail "build with pkg-config"
# shellcheck disable=SC2046
$CC $SAN -Wall -Werror "$HELLO" -o "$TMP/hello-static" $(pkg-config --cflags ipchub) \
	"$LIBDIR/libipchub.a" $(pkg-config --libs msgpack libsodium) || fail "build static"
if ldd "$TMP/hello-static" | grep -q libipchub; then fail "static build uses libipchub.so"; fi
cmake -S "$PREFIX/share/doc/ipchub/examples" -B "$TMP/cmk" \
	-DCMAKE_PREFIX_PATH="$PREFIX" -DCMAKE_BUILD_RPATH="$LIBDIR" \
	-DCMAKE_C_FLAGS="$SAN" -DCMAKE_EXE_LINKER_FLAGS="$SAN" >"$TMP/cmk.log" 2>&1 ||
	{ cat "$TMP/cmk.log" >&2; fail "find_package(ipchub)"; }
cmake --build "$TMP/cmk" >>"$TMP/cmk.log" 2>&1 || { cat "$TMP/cmk.log" >&2; fail "cmake build"; }

# The installed broker, and each program against it.
SOCK=$TMP/hub.sock
"$PREFIX/bin/ipchubd" --socket "$SOCK" --log-level warn >"$TMP/ready" 2>"$TMP/hub.log" &
HUB_PID=$!
i=0
until grep -q "listening on" "$TMP/ready" 2>/dev/null; do
	i=$((i + 1))
	[ $i -lt 500 ] || fail "installed ipchubd did not start: $(cat "$TMP/hub.log")"
	sleep 0.02
done
for p in hello-pc hello-static cmk/hello; do
	out=$("$TMP/$p" "$SOCK") || fail "$p failed"
	expect="hello: hello sent \"hello, world\" to hello via $SOCK"
	[ "$out" = "$expect" ] || fail "$p printed: $out"
done
"$PREFIX/bin/ipchub" --socket "$SOCK" ping >/dev/null || fail "installed ipchub ping"
kill "$HUB_PID"
wait "$HUB_PID" || fail "ipchubd exit status $?"
HUB_PID=
[ ! -e "$SOCK" ] || fail "socket file left behind"
echo "test_install: 3 builds of hello ran against the installed hub"
