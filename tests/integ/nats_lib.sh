# nats_lib.sh - shared by the federation tests (test_bridge.sh,
# test_bridge_names.sh): find nats-server or skip (exit 77, the only
# allowed skip), then source cli_lib.sh. free_ports N fills `ports` with N
# random loopback TCP ports that nothing listens on now.
# Source it after setting IPCHUBD, IPCHUB, BRIDGE and TAG.

NATS=$(command -v nats-server || true)
if [ -z "$NATS" ]; then
	echo "SKIP: nats-server is not installed (scripts/install-deps installs it)"
	exit 77
fi
# shellcheck source=cli_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/cli_lib.sh"

free_ports() { # free_ports N
	local used p
	used=$(ss -Htln 2>/dev/null | awk '{print $4}' | sed 's/.*://' | sort -u)
	ports=()
	while [ ${#ports[@]} -lt "$1" ]; do
		p=$((20000 + RANDOM % 40000))
		grep -qx "$p" <<<"$used" && continue
		case " ${ports[*]} " in *" $p "*) continue ;; esac
		ports+=("$p")
	done
}
