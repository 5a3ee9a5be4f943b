#!/bin/bash
# test_bridge.sh - ipchub-bridge over a real 3-node nats-server cluster on
# loopback: three ipchubd + bridge pairs (hubs a, b, c), pub/sub with
# wildcards across hubs, no loops (a message is delivered once per hub,
# never echoed back), one NATS node and one bridge killed mid-traffic,
# with the accounting: every publication is delivered, or its loss is
# reported by a bridge's counters (nothing silent).
# Usage: test_bridge.sh IPCHUBD IPCHUB IPCHUB-BRIDGE
set -uo pipefail

IPCHUBD=$1
IPCHUB=$2
BRIDGE=$3
TAG=bridge
NATS=$(command -v nats-server || true)
if [ -z "$NATS" ]; then
	echo "SKIP: nats-server is not installed (scripts/install-deps installs it)"
	exit 77
fi
# shellcheck source=cli_lib.sh
. "$(dirname "$0")/cli_lib.sh"

# Free loopback TCP ports: random, checked against what listens now.
used=$(ss -Htln 2>/dev/null | awk '{print $4}' | sed 's/.*://' | sort -u)
ports=()
while [ ${#ports[@]} -lt 6 ]; do
	p=$((20000 + RANDOM % 40000))
	grep -qx "$p" <<<"$used" && continue
	case " ${ports[*]} " in *" $p "*) continue ;; esac
	ports+=("$p")
done
client_port() { echo "${ports[$1]}"; }
route_port() { echo "${ports[$(($1 + 3))]}"; }
nats_pid=()
start_nats() { # start_nats I
	local i=$1 routes="" j
	for j in 0 1 2; do
		[ "$j" = "$i" ] && continue
		routes="$routes${routes:+,}nats://127.0.0.1:$(route_port "$j")"
	done
	"$NATS" -a 127.0.0.1 -p "$(client_port "$i")" -n "n$i" --cluster_name ipchubtest \
		--cluster "nats://127.0.0.1:$(route_port "$i")" --routes "$routes" \
		>"$dir/nats$i.log" 2>&1 &
	nats_pid[$i]=$!
	pids+=($!)
}
for i in 0 1 2; do start_nats $i; done
for i in 0 1 2; do
	wait_for 30 grep -q "Server is ready" "$dir/nats$i.log" ||
		{ echo "nats-server $i did not start"; cat "$dir/nats$i.log"; exit 1; }
done
check "NATS cluster routes formed" wait_for 30 sh -c \
	"for i in 0 1 2; do grep -q 'Route connection created' '$dir'/nats\$i.log || exit 1; done"

urls_from() { # urls_from I: node I first, then the others
	local i=$1 out="" j
	for j in $i $(((i + 1) % 3)) $(((i + 2) % 3)); do
		out="$out${out:+,}nats://127.0.0.1:$(client_port "$j")"
	done
	echo "$out"
}
hubs=(a b c)
bridge_pid=()
for i in 0 1 2; do
	h=${hubs[$i]}
	"$IPCHUBD" --socket "$dir/$h.sock" --log-level warn >"$dir/hub$h.out" 2>"$dir/hub$h.err" &
	pids+=($!)
done
for h in "${hubs[@]}"; do
	wait_for 30 grep -q "listening on" "$dir/hub$h.out" || { echo "hub $h did not start"; exit 1; }
done
start_bridge() { # start_bridge I
	local i=$1 h=${hubs[$1]}
	"$BRIDGE" --hub "$h" --socket "$dir/$h.sock" --nats "$(urls_from "$i")" \
		--export 'weather.>' --import 'weather.>' --export 'alarm.*' --import 'alarm.*' \
		2>"$dir/bridge$h.err" &
	bridge_pid[$i]=$!
	pids+=($!)
	wait_for 30 grep -q "ready" "$dir/bridge$h.err" || { echo "bridge $h did not start"; cat "$dir/bridge$h.err"; exit 1; }
}
for i in 0 1 2; do start_bridge $i; done

# Subscribers on every hub.
for h in "${hubs[@]}"; do
	"$IPCHUB" -s "$dir/$h.sock" sub 'weather.*.*' >>"$dir/sub$h.out" 2>"$dir/sub$h.err" &
	pids+=($!)
	"$IPCHUB" -s "$dir/$h.sock" sub 'alarm.>' >>"$dir/alarm$h.out" 2>/dev/null &
	pids+=($!)
done
for h in "${hubs[@]}"; do
	wait_for 30 sh -c "\"$IPCHUB\" -s '$dir/$h.sock' stats | grep -q alarm" || { echo "sub on $h not up"; exit 1; }
done
paris() { grep -c 'weather\.paris\.' "$1"; } # probes may still trickle in
# NATS interest crosses the routes asynchronously, and NATS drops a
# publication no server has interest for yet: probe every directed pair
# (each hub publishes until every other hub has seen its probe; bounded)
# so no counted publication below races the interest propagation.
probe() { # probe SRC: publish from SRC, succeed once every other hub saw it
	local s=$1 o
	"$IPCHUB" -s "$dir/$s.sock" pub "weather.probe.$s" '{}' || return 1
	for o in "${hubs[@]}"; do
		[ "$o" = "$s" ] && continue
		grep -q "probe.$s\"" "$dir/sub$o.out" || return 1
	done
}
for h in "${hubs[@]}"; do
	check "$h's publications reach the other two hubs" wait_for 30 probe "$h"
done
sleep 0.3 # let probes in flight land before counting from a clean state
for h in "${hubs[@]}"; do : >"$dir/sub$h.out"; done

# One publication per hub, each delivered exactly once on every hub.
for h in "${hubs[@]}"; do
	"$IPCHUB" -s "$dir/$h.sock" --name "st$h" pub "weather.paris.$h" "{\"n\":1}"
done
for h in "${hubs[@]}"; do
	check "hub $h got the three publications" wait_for 30 sh -c "test \$(grep -c 'weather.paris' '$dir/sub$h.out') -ge 3"
done
sleep 0.5 # a loop would show up as extra copies in this time
for h in "${hubs[@]}"; do
	check "hub $h: exactly three, no loop" test "$(paris "$dir/sub$h.out")" = 3
	for o in "${hubs[@]}"; do
		check "hub $h got weather.paris.$o once" test "$(grep -c "weather.paris.$o\"" "$dir/sub$h.out")" = 1
	done
done
check "the body crosses intact" json_check "$(grep 'paris.a"' "$dir/subb.out")" \
	'v.kind === "publish" && v.topic === "weather.paris.a" && v.body.n === 1'
# Wildcards: '*' on import (alarm.*) and subscriber (alarm.>), non-matching not bridged.
# alarm.* is its own NATS subscription: retry until its interest has
# crossed the routes too, then check the deeper topic stays local.
check "alarm.fire from b reaches a" wait_for 30 sh -c \
	"\"$IPCHUB\" -s '$dir/b.sock' pub alarm.fire '{}' && grep -q 'alarm.fire\"' '$dir/alarma.out'"
"$IPCHUB" -s "$dir/b.sock" pub alarm.fire.deep '{}' # not exported (alarm.* is one segment)
sleep 0.3
check "alarm.fire.deep stays on b" test "$(grep -c deep "$dir/alarma.out")" = 0
check "alarm.fire.deep delivered on b itself" grep -q 'alarm.fire.deep' "$dir/alarmb.out"

# Mid-traffic: kill NATS node 0 (bridge a's first server) and bridge c.
# Publish N messages on a; every one must be delivered on b or counted
# lost by a bridge (a's export failures/gaps, b's import failures).
: >"$dir/subb.out"
N=40
sent=0
for k in $(seq 1 $N); do
	[ "$k" = 10 ] && kill "${nats_pid[0]}"
	[ "$k" = 20 ] && kill "${bridge_pid[2]}"
	"$IPCHUB" -s "$dir/a.sock" pub "weather.load.a" "{\"k\":$k}" && sent=$((sent + 1))
done
check "bridge a reconnected to another NATS node" wait_for 30 grep -q "NATS reconnected" "$dir/bridgea.err"
# Retry until one arrives after the reconnect, then stop the bridges to read their counters.
check "traffic flows again after the node loss" wait_for 30 sh -c \
	"\"$IPCHUB\" -s '$dir/a.sock' pub weather.after.a '{}' && grep -q after.a '$dir/subb.out'"
sleep 0.3
kill "${bridge_pid[0]}" "${bridge_pid[1]}"
wait "${bridge_pid[0]}" "${bridge_pid[1]}" "${bridge_pid[2]}" 2>/dev/null
counter() { sed -n "s/.* $2 \([0-9]*\).*/\1/p" "$dir/bridge$1.err" | tail -1; }
delivered=$(grep -c 'weather.load.a"' "$dir/subb.out")
exported=$(counter a exported)
lost=$(( $(counter a lost-before-export) + $(counter a export-failed) + $(counter b import-failed) ))
echo "# sent $sent, delivered on b $delivered, exported by a $exported, reported lost $lost"
check "bridges printed their counters" test -n "$exported"
check "every publication on a was exported or its loss reported" test $((exported + lost)) -ge "$sent"
# Between a's export and b's delivery the only loss is a NATS node that
# dies with messages in flight; libnats counts what it could not send
# (export-failed) but not what a dying server had accepted, so the
# remainder is at most the in-flight window around the kill (reported as
# "in flight" here, not silently).
inflight=$((sent - delivered - lost))
echo "# lost in flight at the node kill: $inflight"
check "sent = delivered + reported-failed + in-flight at the kill (bounded)" \
	test "$inflight" -ge 0 -a "$inflight" -le 10
finish
