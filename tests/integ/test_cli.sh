#!/bin/bash
# test_cli.sh - the `ipchub` CLI against a real ipchubd, as a shell user
# would drive it: the README's tour (listen/send, serve/call), peers, ping,
# and the error contract (exit status, one line naming the code).
# JSON is checked with node (part of the base machine), never by regex.
# Usage: test_cli.sh IPCHUBD IPCHUB
set -uo pipefail

IPCHUBD=$1
IPCHUB=$2
TAG=cli
# shellcheck source=cli_lib.sh
. "$(dirname "$0")/cli_lib.sh"
start_broker

# ping
out=$("$IPCHUB" ping -c 2)
check "ping answers twice" test "$(grep -c pong <<<"$out")" = 2

# listen + send (the tour)
"$IPCHUB" listen inbox >"$dir/listen.out" 2>"$dir/listen.err" &
pids+=($!)
check "listen registered its name" wait_for 5 sh -c "\"$IPCHUB\" peers | grep -q '\"inbox\"'"
check "send exits 0" "$IPCHUB" --name sender send inbox '{"hello":"world","n":[1,2.5,null,true]}'
check "listen printed the message" wait_for 5 test -s "$dir/listen.out"
line=$(head -n1 "$dir/listen.out")
check "listen line is the message" json_check "$line" \
	'v.kind === "send" && v.from === "sender" && v.to === "inbox" && typeof v.from_id === "number" && v.body.hello === "world" && JSON.stringify(v.body.n) === "[1,2.5,null,true]"'

# Binary survives as {"$bin": base64}.
"$IPCHUB" send inbox '{"$bin":"AAEC/w=="}' >/dev/null
check "second message arrives" wait_for 5 test "$(wc -l <"$dir/listen.out")" -ge 2
line=$(sed -n 2p "$dir/listen.out")
check "bin round-trips" json_check "$line" 'v.body["$bin"] === "AAEC/w==" && v.from === null'

# send --fd: the listener shows the descriptor and what it refers to.
echo fdtest >"$dir/passed.txt"
check "send --fd exits 0" "$IPCHUB" send inbox --fd "$dir/passed.txt"
check "third message arrives" wait_for 5 test "$(wc -l <"$dir/listen.out")" -ge 3
line=$(sed -n 3p "$dir/listen.out")
check "listen shows the passed fd" json_check "$line" \
	'v.fds.length === 1 && v.fds[0].fd >= 0 && v.fds[0].target === "'"$dir/passed.txt"'"'
check "send --fd of a missing file fails" sh -c "! \"$IPCHUB\" send inbox --fd \"$dir/none\" 2>/dev/null"

# peers
out=$("$IPCHUB" peers)
check "peers lists inbox" json_check "$(grep '"inbox"' <<<"$out")" 'v.name === "inbox" && v.conn > 0 && v.uid === '"$(id -u)"

# serve + call (the tour's request/reply)
"$IPCHUB" serve upper -- node -e '
let s = ""; process.stdin.on("data", d => s += d).on("end", () => {
  const b = JSON.parse(s);
  console.log(JSON.stringify({ text: String(b.text).toUpperCase(), from: process.env.IPCHUB_FROM || null }));
});' >"$dir/serve.out" 2>"$dir/serve.err" &
pids+=($!)
check "serve registered" wait_for 5 sh -c "\"$IPCHUB\" peers | grep -q '\"upper\"'"
out=$("$IPCHUB" --name caller call upper '{"text":"hello"}')
check "call prints the reply" json_check "$out" 'v.text === "HELLO" && v.from === "caller"'

# A failing command becomes a REMOTE_ERROR reply.
"$IPCHUB" serve broken -- sh -c 'echo "disk on fire" >&2; exit 3' >/dev/null 2>&1 &
pids+=($!)
wait_for 5 sh -c "\"$IPCHUB\" peers | grep -q '\"broken\"'"
err=$("$IPCHUB" call broken '{}' 2>&1 >/dev/null); rc=$?
check "failing handler: exit 1" test $rc = 1
check "failing handler: REMOTE_ERROR named" grep -q '^ipchub: REMOTE_ERROR' <<<"$err"
check "failing handler: stderr relayed" grep -q 'disk on fire' <<<"$err"

# Deadlines: a handler slower than the caller's timeout.
"$IPCHUB" serve sleepy -- sleep 10 >/dev/null 2>&1 &
pids+=($!)
wait_for 5 sh -c "\"$IPCHUB\" peers | grep -q '\"sleepy\"'"
err=$("$IPCHUB" call sleepy '{}' --timeout 200 2>&1 >/dev/null); rc=$?
check "timeout: exit 1" test $rc = 1
check "timeout: TIMEOUT named" grep -q '^ipchub: TIMEOUT' <<<"$err"

# Errors name their code on one line.
err=$("$IPCHUB" send nobody '{}' 2>&1); rc=$?
check "send to nobody: exit 1" test $rc = 1
check "send to nobody: NO_SUCH_PEER" grep -q '^ipchub: NO_SUCH_PEER' <<<"$err"
check "send to nobody: one line" test "$(wc -l <<<"$err")" = 1
err=$("$IPCHUB" call nobody '{}' 2>&1); rc=$?
check "call nobody: NO_SUCH_PEER" test $rc = 1 -a -n "$(grep '^ipchub: NO_SUCH_PEER' <<<"$err")"
err=$("$IPCHUB" listen inbox 2>&1); rc=$?
check "listen on a taken name: NAME_TAKEN" test $rc = 1 -a -n "$(grep '^ipchub: NAME_TAKEN' <<<"$err")"
err=$("$IPCHUB" send 'bad name' '{}' 2>&1); rc=$?
check "bad name: BAD_NAME" test $rc = 1 -a -n "$(grep 'BAD_NAME' <<<"$err")"
err=$("$IPCHUB" send inbox '{not json' 2>&1); rc=$?
check "invalid JSON: INVALID, exit 1" test $rc = 1 -a -n "$(grep '^ipchub: INVALID: invalid JSON' <<<"$err")"
"$IPCHUB" frobnicate >/dev/null 2>&1; rc=$?
check "unknown command: 2" test $rc = 2
err=$("$IPCHUB" --socket "$dir/none.sock" ping 2>&1); rc=$?
check "no broker: NO_BROKER" test $rc = 1 -a -n "$(grep '^ipchub: NO_BROKER' <<<"$err")"
check "--help works" "$IPCHUB" --help

finish
