#!/bin/bash
# bridge_run.sh - one measurement of bench/bridge_bench.c with its servers:
#
#   bridge_run.sh BUILD SYSTEM thru|rtt SIZE COUNT [SAMPLES]
#
# SYSTEM: nats-libnats (libnats' defaults), nats-libnats-asap (each message
# written at once, as the bridge does by default), ipchub-bridge (default
# bridge), ipchub-bridge-batch (bridges with --nats-batch).
# Starts nats-server on a free loopback port (and for bridge-* two ipchubd,
# hubs a and b, each with an ipchub-bridge; a exports bench.sink and
# bench.echo), runs bench_bridge, prints its JSON line, stops everything
# it started (by pid) on any exit. bench/run calls it for the systems
# nats-libnats and ipchub-bridge.
set -euo pipefail
BUILD=$1 SYSTEM=$2 WL=$3 SIZE=$4 COUNT=$5 SAMPLES=${6:-}
dir=$(mktemp -d /tmp/ipchub-bridgebench-XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT
wait_for() { # wait_for SECONDS CMD...
	local end=$((SECONDS + $1)); shift
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -ge $end ] && return 1
		sleep 0.05
	done
}
"$(command -v nats-server)" -a 127.0.0.1 -p -1 -l "$dir/nats.log" >/dev/null 2>&1 &
pids+=($!)
wait_for 20 grep -q "Listening for client connections on 127.0.0.1:" "$dir/nats.log" ||
	{ echo "nats-server did not start" >&2; exit 1; }
port=$(sed -n 's/.*Listening for client connections on 127.0.0.1:\([0-9]*\).*/\1/p' "$dir/nats.log" | head -1)
url=nats://127.0.0.1:$port
extra=(--system "$SYSTEM")
[ -n "$SAMPLES" ] && extra+=(--samples "$SAMPLES")
batch=()
case $SYSTEM in
nats-libnats | nats-libnats-asap)
	[ "$SYSTEM" = nats-libnats-asap ] && extra+=(--asap)
	exec_bench=("$BUILD/bench/bench_bridge" "nats-$WL" --nats "$url" --size "$SIZE" --count "$COUNT" "${extra[@]}")
	;;
ipchub-bridge | ipchub-bridge-batch)
	[ "$SYSTEM" = ipchub-bridge-batch ] && batch=(--nats-batch)
	for h in a b; do
		"$BUILD/broker/ipchubd" --socket "$dir/$h.sock" --log-level warn >"$dir/hub$h.out" 2>&1 &
		pids+=($!)
	done
	for h in a b; do
		wait_for 20 grep -q "listening on" "$dir/hub$h.out" || { echo "ipchubd $h did not start" >&2; exit 1; }
	done
	for h in a b; do
		names=()
		[ "$h" = a ] && names=(--export-name bench.sink --export-name bench.echo)
		"$BUILD/bridge/ipchub-bridge" --hub "$h" --socket "$dir/$h.sock" --nats "$url" \
			"${names[@]}" "${batch[@]}" 2>"$dir/bridge$h.err" &
		pids+=($!)
	done
	for h in a b; do
		wait_for 20 grep -q "ready" "$dir/bridge$h.err" || { echo "bridge $h did not start" >&2; exit 1; }
	done
	exec_bench=("$BUILD/bench/bench_bridge" "bridge-$WL" --local "$dir/b.sock" --remote "$dir/a.sock"
		--hub a --size "$SIZE" --count "$COUNT" "${extra[@]}")
	;;
*)
	echo "unknown system $SYSTEM" >&2
	exit 2
	;;
esac
"${exec_bench[@]}"
