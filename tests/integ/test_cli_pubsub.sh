#!/bin/bash
# test_cli_pubsub.sh - the pub/sub, presence, monitor and stats commands of
# the `ipchub` CLI against a real ipchubd (same style as test_cli.sh).
# JSON is checked with node, never by regex.
# Usage: test_cli_pubsub.sh IPCHUBD IPCHUB
set -uo pipefail

IPCHUBD=$1
IPCHUB=$2
TAG=clips
# shellcheck source=cli_lib.sh
. "$(dirname "$0")/cli_lib.sh"
start_broker

# sub + pub
"$IPCHUB" sub 'weather.*' >"$dir/sub.out" 2>"$dir/sub.err" &
pids+=($!)
check "sub subscribed" wait_for 5 sh -c "\"$IPCHUB\" stats | grep -q weather"
check "pub exits 0" "$IPCHUB" --name station pub weather.paris '{"temp":21}'
"$IPCHUB" pub traffic.paris '{"jam":true}'
"$IPCHUB" pub weather.rome '{"temp":25}'
check "sub printed two lines" wait_for 5 sh -c "test \$(wc -l <'$dir/sub.out') -ge 2"
check "first publication" json_check "$(sed -n 1p "$dir/sub.out")" \
	'v.kind === "publish" && v.topic === "weather.paris" && v.from === "station" && v.body.temp === 21 && v.sub > 0'
check "second publication (unmatched topic skipped)" json_check "$(sed -n 2p "$dir/sub.out")" \
	'v.topic === "weather.rome" && v.body.temp === 25'
err=$("$IPCHUB" pub 'weather.*' '{}' 2>&1); rc=$?
check "pub with a wildcard: BAD_NAME" test $rc = 1 -a -n "$(grep '^ipchub: BAD_NAME' <<<"$err")"
err=$("$IPCHUB" sub 'a..b' 2>&1); rc=$?
check "bad pattern: BAD_NAME" test $rc = 1 -a -n "$(grep 'BAD_NAME' <<<"$err")"
"$IPCHUB" sub x --policy sometimes >/dev/null 2>&1; rc=$?
check "unknown policy: usage error" test $rc = 2

# wait + watch
"$IPCHUB" watch svc.db >"$dir/watch.out" 2>/dev/null &
pids+=($!)
check "watch printed the first state" wait_for 5 test -s "$dir/watch.out"
check "first state: unowned" json_check "$(sed -n 1p "$dir/watch.out")" \
	'v.kind === "presence" && v.name === "svc.db" && v.event === "unowned" && v.owner === null'
"$IPCHUB" wait svc.db --timeout 200 >/dev/null 2>"$dir/wait1.err"; rc=$?
check "wait on an absent name times out: exit 1" test $rc = 1
check "wait timeout names TIMEOUT" grep -q '^ipchub: TIMEOUT' "$dir/wait1.err"
"$IPCHUB" wait svc.db --timeout 10000 &
waiter=$!
sleep 0.2
"$IPCHUB" listen svc.db >/dev/null 2>&1 &
lpid=$!
pids+=($lpid)
wait $waiter; rc=$?
check "wait exits 0 once the name appears" test $rc = 0
check "wait on an owned name exits 0 at once" "$IPCHUB" wait svc.db --timeout 2000
kill $lpid; wait $lpid 2>/dev/null
check "watch saw registered and released" wait_for 5 sh -c "test \$(wc -l <'$dir/watch.out') -ge 3"
check "registered line" json_check "$(sed -n 2p "$dir/watch.out")" 'v.event === "registered" && v.owner > 0'
check "released line" json_check "$(sed -n 3p "$dir/watch.out")" 'v.event === "released" && v.reason === "disconnect"'

# monitor
"$IPCHUB" monitor --filter 'kind=SEND' >"$dir/mon.out" 2>"$dir/mon.err" &
pids+=($!)
"$IPCHUB" listen inbox >/dev/null 2>&1 &
pids+=($!)
wait_for 30 sh -c "\"$IPCHUB\" peers | grep -q inbox"
# The monitor taps from when the broker has its MONITOR, which this shell
# cannot see: send until the tap shows one (bounded), not after a sleep.
check "monitor saw the send both ways" wait_for 30 sh -c \
	"\"$IPCHUB\" send inbox '{\"hi\":1}' && test \$(wc -l <'$dir/mon.out') -ge 2"
check "monitor in line" json_check "$(grep '"in"' "$dir/mon.out" | head -1)" 'v.kind === "SEND" && v.to === "inbox" && v.body.hi === 1'
check "monitor out line" json_check "$(grep '"out"' "$dir/mon.out" | head -1)" 'v.kind === "SEND" && typeof v.from_id === "number"'
err=$("$IPCHUB" monitor --filter 'color=red' 2>&1); rc=$?
check "bad filter: BAD_FILTER" test $rc = 1 -a -n "$(grep '^ipchub: BAD_FILTER' <<<"$err")"

# stats
out=$("$IPCHUB" stats)
check "stats is one JSON object with totals" json_check "$out" \
	'v.connections >= 3 && v.messages_routed >= 1 && Array.isArray(v.conns) && v.conns.some(c => c.names.includes("inbox"))'
prom=$("$IPCHUB" stats --prometheus)
check "prometheus: ends with # EOF" test "$(tail -n1 <<<"$prom")" = "# EOF"
check "prometheus: has routed counter" grep -q '^ipchub_messages_routed_total [0-9]' <<<"$prom"
check "prometheus: has batches counter" grep -q '^ipchub_batches_routed_total [0-9]' <<<"$prom"
check "prometheus: has copied-bytes counter" grep -q '^ipchub_copied_bytes_total [0-9]' <<<"$prom"
check "prometheus: has per-conn gauge" grep -q '^ipchub_conn_queued_bytes{conn="[0-9]*",name="inbox"} ' <<<"$prom"

finish
