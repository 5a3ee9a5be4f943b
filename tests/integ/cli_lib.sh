# cli_lib.sh - shared by the CLI tests (test_cli.sh, test_cli_pubsub.sh):
# a TAP-style check/ok/not_ok counter, JSON checks done by node (never by
# regex), polling with a bound, and a broker started on a temporary socket
# that is stopped (with every background pid) on exit.
# Source it after setting IPCHUBD, IPCHUB and TAG (the temp dir's name).

dir=$(mktemp -d "/tmp/ipchub-$TAG-XXXXXX")
sock=$dir/hub.sock
export IPCHUB_SOCKET=$sock
pids=()
fails=0
passes=0

cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT

ok() { passes=$((passes + 1)); echo "ok - $1"; }
not_ok() { fails=$((fails + 1)); echo "not ok - $1"; }
check() { # check NAME CMD...
	local name=$1; shift
	if "$@"; then ok "$name"; else not_ok "$name"; fi
}
# json_check JSON JS-EXPR: evaluates EXPR with `v` bound to the parsed JSON.
json_check() {
	node -e "const v = JSON.parse(process.argv[1]); if (!($2)) { console.error('json check failed:', process.argv[1]); process.exit(1); }" "$1"
}
wait_for() { # wait_for SECONDS CMD...: poll until CMD succeeds
	local deadline=$((SECONDS + $1)); shift
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -ge $deadline ] && return 1
		sleep 0.05
	done
}
# Start the broker on $sock; exit the test if it does not come up.
start_broker() {
	"$IPCHUBD" --socket "$sock" --log-level warn >"$dir/broker.out" 2>"$dir/broker.err" &
	pids+=($!)
	wait_for 10 grep -q "listening on $sock" "$dir/broker.out" ||
		{ echo "broker did not start"; cat "$dir/broker.err"; exit 1; }
}
# The closing line ctest and people read; the exit status follows it.
finish() {
	echo "$passes passed, $fails failed"
	[ "$fails" = 0 ]
}
