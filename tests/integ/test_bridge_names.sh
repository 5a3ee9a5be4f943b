#!/bin/bash
# test_bridge_names.sh - names across hubs through ipchub-bridge
# (docs/FEDERATION.md): a 2-node nats-server cluster on loopback (clients
# authenticate with a user and password, so the links are trusted and
# claims travel), hubs a and b each with a bridge on a different node.
# Checks presence of exported names on the other hub (appear, released
# when the owner leaves), SEND with `from` = name@hub and the uid claim,
# REQUEST/REPLY, TIMEOUT, NO_SUCH_PEER, PEER_GONE, and a bridge killed
# (SIGKILL) mid-traffic: every request gets a reply or a reported failure
# (sent = delivered + reported-failed), none hangs, and the dead hub's
# names are released on the other hub within the documented bound.
# Every wait polls a condition with a generous bound (loaded machines).
# Bridge b reads its settings from a file (--config).
# Usage: test_bridge_names.sh IPCHUBD IPCHUB IPCHUB-BRIDGE
set -uo pipefail

IPCHUBD=$1
IPCHUB=$2
BRIDGE=$3
TAG=bridgenames
# shellcheck source=nats_lib.sh
. "$(dirname "$0")/nats_lib.sh"
free_ports 4
echo "s3cret-$RANDOM" >"$dir/pw"
chmod 600 "$dir/pw"
for i in 0 1; do
	o=$((1 - i))
	"$NATS" -a 127.0.0.1 -p "${ports[$i]}" -n "n$i" --cluster_name ipchubnames \
		--cluster "nats://127.0.0.1:${ports[$((i + 2))]}" \
		--routes "nats://127.0.0.1:${ports[$((o + 2))]}" \
		--user bridge --pass "$(cat "$dir/pw")" >"$dir/nats$i.log" 2>&1 &
	pids+=($!)
done
for i in 0 1; do
	wait_for 15 grep -q "Server is ready" "$dir/nats$i.log" ||
		{ echo "nats-server $i did not start"; cat "$dir/nats$i.log"; exit 1; }
done
check "NATS cluster route formed" wait_for 15 sh -c \
	"grep -q 'Route connection created' '$dir/nats0.log' && grep -q 'Route connection created' '$dir/nats1.log'"

hubs=(a b)
for h in a b; do
	"$IPCHUBD" --socket "$dir/$h.sock" --log-level warn >"$dir/hub$h.out" 2>"$dir/hub$h.err" &
	pids+=($!)
done
for h in a b; do
	wait_for 15 grep -q "listening on" "$dir/hub$h.out" || { echo "hub $h did not start"; exit 1; }
done
bridge_pid=()
start_bridge() { # start_bridge I NAMES...
	local i=$1 h=${hubs[$1]} args=()
	shift
	for n in "$@"; do args+=(--export-name "$n"); done
	"$BRIDGE" --hub "$h" --socket "$dir/$h.sock" \
		--nats "nats://127.0.0.1:${ports[$i]},nats://127.0.0.1:${ports[$((1 - i))]}" \
		--user bridge --password-file "$dir/pw" "${args[@]}" 2>"$dir/bridge$h.err" &
	bridge_pid[$i]=$!
	pids+=($!)
	wait_for 15 grep -q "ready" "$dir/bridge$h.err" || { echo "bridge $h did not start"; cat "$dir/bridge$h.err"; exit 1; }
}
start_bridge 0 echo sink slow gone absent
# Bridge b takes its settings from a file (the command line adds to it).
cat >"$dir/b.ini" <<EOF
[bridge]
hub = b
nats = nats://127.0.0.1:${ports[1]},nats://127.0.0.1:${ports[0]}
user = bridge
password-file = $dir/pw
[names]
export = bsvc
EOF
"$BRIDGE" --config "$dir/b.ini" --socket "$dir/b.sock" 2>"$dir/bridgeb.err" &
bridge_pid[1]=$!
pids+=($!)
wait_for 15 grep -q "ready" "$dir/bridgeb.err" || { echo "bridge b did not start"; cat "$dir/bridgeb.err"; exit 1; }
check "bridge b read its settings file" grep -q "hub b ready.*1 exported names" "$dir/bridgeb.err"

A=(-s "$dir/a.sock")
B=(-s "$dir/b.sock")
# Services on hub a: an echo responder, a listener, a responder slower
# than any deadline, and one whose server dies with the request.
"$IPCHUB" "${A[@]}" serve echo -- cat >/dev/null 2>"$dir/echo.err" &
pids+=($!)
"$IPCHUB" "${A[@]}" listen sink >"$dir/sink.out" 2>/dev/null &
sink_pid=$!
pids+=($!)
"$IPCHUB" "${A[@]}" -t 30000 serve slow -- sleep 20 >/dev/null 2>&1 &
pids+=($!)
"$IPCHUB" "${A[@]}" serve gone -- sh -c 'kill -9 $PPID; sleep 5' >/dev/null 2>&1 &
pids+=($!)
peers_b() { "$IPCHUB" "${B[@]}" peers; }
has_peer() { peers_b | grep -q "\"name\":\"$1\""; }
no_peer() { ! has_peer "$1"; }
for n in echo@a sink@a slow@a gone@a; do
	check "$n is present on hub b" wait_for 20 has_peer "$n"
done
check "absent@a (exported, nobody registered) is not" no_peer absent@a
check "bsvc@b is not on hub b itself" no_peer bsvc@b
check "wait on a remote name returns" "$IPCHUB" "${B[@]}" wait echo@a --timeout 5000

# REQUEST/REPLY across hubs.
out=$("$IPCHUB" "${B[@]}" -t 10000 call echo@a '{"x":42}')
check "request/reply echo@a from b" json_check "$out" 'v.x === 42'
# SEND: from becomes name@hub, the uid claim travels (trusted link).
"$IPCHUB" "${B[@]}" --name bob send sink@a '{"n":1}'
check "send reaches sink@a" wait_for 15 grep -q '"n":1' "$dir/sink.out"
line=$(grep '"n":1' "$dir/sink.out" | head -1)
check "from is bob@b" json_check "$line" 'v.from === "bob@b" && v.kind === "send"'
check "the origin uid arrives as a claim" json_check "$line" "v.claim_uid === $(id -u)"
# Unnamed sender: no from.
"$IPCHUB" "${B[@]}" send sink@a '{"n":2}'
check "unnamed send reaches sink@a" wait_for 15 grep -q '"n":2' "$dir/sink.out"
check "an unnamed remote sender has no from" \
	json_check "$(grep '"n":2' "$dir/sink.out")" 'v.from === null'

# Failures: each answered, none hangs.
err=$("$IPCHUB" "${B[@]}" call slow@a '{}' --timeout 1500 2>&1)
check "request to a slow remote peer: TIMEOUT ($err)" grep -q TIMEOUT <<<"$err"
err=$("$IPCHUB" "${B[@]}" call absent@a '{}' --timeout 5000 2>&1)
check "exported but absent: NO_SUCH_PEER ($err)" grep -q NO_SUCH_PEER <<<"$err"
err=$("$IPCHUB" "${B[@]}" call nobody@zz '{}' --timeout 5000 2>&1)
check "unknown hub: NO_SUCH_PEER ($err)" grep -q NO_SUCH_PEER <<<"$err"
err=$("$IPCHUB" "${B[@]}" -t 10000 call gone@a '{}' --timeout 8000 2>&1)
check "responder dies before answering: PEER_GONE ($err)" grep -q PEER_GONE <<<"$err"
check "gone@a is released on b" wait_for 15 no_peer gone@a

# Presence: the listener leaves, its remote name goes.
kill "$sink_pid"
check "sink@a released on b when its owner leaves" wait_for 15 no_peer sink@a

# Kill bridge a (SIGKILL: no goodbye) in the middle of N requests.
N=30
ok_n=0
fail_n=0
other=0
for k in $(seq 1 $N); do
	[ "$k" = 11 ] && kill -9 "${bridge_pid[0]}"
	if out=$("$IPCHUB" "${B[@]}" -t 10000 call echo@a "{\"k\":$k}" --timeout 3000 2>&1); then
		if json_check "$out" "v.k === $k" 2>/dev/null; then
			ok_n=$((ok_n + 1))
		else
			echo "# unexpected reply: $out"
			other=$((other + 1))
		fi
	elif grep -qE 'NO_SUCH_PEER|PEER_GONE|TIMEOUT' <<<"$out"; then
		fail_n=$((fail_n + 1))
	else
		echo "# unexpected: $out"
		other=$((other + 1))
	fi
done
echo "# requests $N: replied $ok_n, reported failed $fail_n, other $other"
check "sent = delivered + reported-failed" test $((ok_n + fail_n)) = $N -a "$other" = 0
check "requests were answered before the kill" test "$ok_n" -ge 1
check "echo@a released on b once bridge a is silent (3 s bound)" \
	wait_for 20 no_peer echo@a
err=$("$IPCHUB" "${B[@]}" call echo@a '{}' --timeout 3000 2>&1)
check "afterwards: NO_SUCH_PEER ($err)" grep -q NO_SUCH_PEER <<<"$err"
# A new bridge a brings the names back.
start_bridge 0 echo
check "echo@a back on b with a new bridge" wait_for 20 has_peer echo@a
out=$("$IPCHUB" "${B[@]}" -t 10000 call echo@a '{"y":1}')
check "request/reply works again" json_check "$out" 'v.y === 1'
kill "${bridge_pid[1]}"
wait "${bridge_pid[1]}" 2>/dev/null
check "bridge b printed its names counters" grep -q "names: to-remote" "$dir/bridgeb.err"
finish
