# wine.sh - sourced by the tests/win runners: wine_setup WORKDIR makes a
# Wine prefix of its own under WORKDIR/wineprefix (wineboot the first time
# only), sets $WINE, and stops that prefix's wineserver when the runner
# exits - only this prefix, never other Wine processes on the machine.
# The win_* ctest entries share the prefix under RESOURCE_LOCK wineprefix,
# so one runner's final wineserver -k cannot stop another's programs.
wine_setup() {
	export WINEPREFIX="$1/wineprefix" WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
	# Debian's wine64 package installs both outside PATH.
	WINE=$(command -v wine64 || echo /usr/lib/wine/wine64)
	WINESERVER=$(command -v wineserver || echo /usr/lib/wine/wineserver)
	export WINESERVER
	trap 'timeout 30 "$WINESERVER" -k 2>/dev/null || true' EXIT
	if [ ! -f "$WINEPREFIX/.ipchub-booted" ]; then
		timeout 300 "$WINE" wineboot --init >/dev/null 2>&1
		timeout 60 "$WINESERVER" -w
		touch "$WINEPREFIX/.ipchub-booted"
	fi
}
