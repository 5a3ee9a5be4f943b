/*
 * main.c - ipchubd: parse the command line into a broker_conf, start the
 * broker, print the ready line, serve in the foreground until SIGINT or
 * SIGTERM, then stop gracefully. A second signal during the graceful stop
 * exits at once. Exit status: 0 after a clean stop, 1 when the broker
 * cannot start, 2 for a bad command line.
 */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "broker.h"
#include "conf.h"
#include "log.h"

#ifndef IPCHUB_VERSION
#define IPCHUB_VERSION "unknown"
#endif

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: ipchubd [OPTION]...\n"
		"Local inter-process message hub: clients connect to a Unix socket,\n"
		"register names and exchange messages routed by name.\n"
		"\n"
		"  --socket PATH        socket to listen on; '@name' = abstract socket\n"
		"                       (default: $IPCHUB_SOCKET, else\n"
		"                       $XDG_RUNTIME_DIR/ipchub.sock, else\n"
		"                       /tmp/ipchub-<uid>/ipchub.sock)\n"
		"  --socket-mode OCTAL  permissions of the socket file (default %04o)\n"
		"  --max-frame BYTES    largest frame accepted (default %u = 16M;\n"
		"                       %u..%u; K/M/G suffixes allowed)\n"
		"  --queue-hwm BYTES    outbound queue high-water mark per connection\n"
		"                       (default %u = 4M; %u..%u)\n"
		"  --max-names N        names per connection (default %u; 1..%u)\n"
		"  --max-pending N      pending requests per connection (default %u;\n"
		"                       1..%u)\n"
		"  --max-conns N        simultaneous connections (default %u; %u..%u)\n"
		"  --log-level LEVEL    error, warn, info or debug (default info)\n"
		"  -h, --help           show this help and exit\n"
		"  -V, --version        show the version and exit\n"
		"\n"
		"Prints \"ipchubd: listening on PATH\" on stdout when ready; logs go to\n"
		"stderr. SIGINT/SIGTERM stop it gracefully.\n",
		CONF_SOCKET_MODE_DEFAULT, IPCHUB_MAX_FRAME_DEFAULT,
		IPCHUB_MAX_FRAME_MIN, IPCHUB_MAX_FRAME_MAX,
		IPCHUB_QUEUE_HWM_DEFAULT, IPCHUB_QUEUE_HWM_MIN,
		IPCHUB_QUEUE_HWM_MAX, IPCHUB_MAX_NAMES_DEFAULT,
		IPCHUB_MAX_NAMES_MAX, IPCHUB_MAX_PENDING_DEFAULT,
		IPCHUB_MAX_PENDING_MAX, IPCHUB_MAX_CONNS_DEFAULT,
		CONF_MAX_CONNS_MIN, CONF_MAX_CONNS_MAX);
}

static int bad_value(const char *opt, const char *val, int r)
{
	fprintf(stderr, "ipchubd: invalid value for --%s: \"%s\" (%s)\n", opt,
		val, r == -ERANGE ? "out of range" : "not a number");
	return 2;
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct broker *b = arg;

	(void)what;
	if (b->stopping) {
		log_warn(&b->log, "signal %d during shutdown: exiting now",
			 (int)sig);
		event_base_loopbreak(broker_base(b));
		return;
	}
	log_info(&b->log, "signal %d: stopping", (int)sig);
	broker_stop(b);
}

enum {
	OPT_SOCKET = 256,
	OPT_SOCKET_MODE,
	OPT_MAX_FRAME,
	OPT_QUEUE_HWM,
	OPT_MAX_NAMES,
	OPT_MAX_PENDING,
	OPT_MAX_CONNS,
	OPT_LOG_LEVEL
};

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"socket", required_argument, NULL, OPT_SOCKET},
		{"socket-mode", required_argument, NULL, OPT_SOCKET_MODE},
		{"max-frame", required_argument, NULL, OPT_MAX_FRAME},
		{"queue-hwm", required_argument, NULL, OPT_QUEUE_HWM},
		{"max-names", required_argument, NULL, OPT_MAX_NAMES},
		{"max-pending", required_argument, NULL, OPT_MAX_PENDING},
		{"max-conns", required_argument, NULL, OPT_MAX_CONNS},
		{"log-level", required_argument, NULL, OPT_LOG_LEVEL},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	struct broker_conf conf;
	struct broker *b;
	struct event *sigint_ev, *sigterm_ev;
	char err[512];
	int opt, r, rc;

	conf_defaults(&conf);
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":hV", opts, NULL)) != -1) {
		r = 0;
		switch (opt) {
		case OPT_SOCKET:
			conf.socket_path = optarg;
			break;
		case OPT_SOCKET_MODE:
			r = conf_parse_mode(optarg, &conf.socket_mode);
			break;
		case OPT_MAX_FRAME:
			r = conf_parse_size(optarg, &conf.max_frame);
			break;
		case OPT_QUEUE_HWM:
			r = conf_parse_size(optarg, &conf.queue_hwm);
			break;
		case OPT_MAX_NAMES:
			r = conf_parse_u32(optarg, &conf.max_names);
			break;
		case OPT_MAX_PENDING:
			r = conf_parse_u32(optarg, &conf.max_pending);
			break;
		case OPT_MAX_CONNS:
			r = conf_parse_u32(optarg, &conf.max_conns);
			break;
		case OPT_LOG_LEVEL:
			conf.log_level = log_level_parse(optarg);
			if (conf.log_level < 0) {
				fprintf(stderr,
					"ipchubd: invalid value for --log-level: \"%s\" "
					"(error, warn, info or debug)\n",
					optarg);
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("ipchubd %s (protocol %u)\n", IPCHUB_VERSION,
			       IPCHUB_PROTO_VERSION_MAX);
			return 0;
		case ':':
			fprintf(stderr, "ipchubd: option %s needs a value (see --help)\n",
				argv[optind - 1]);
			return 2;
		default:
			fprintf(stderr, "ipchubd: unknown option %s (see --help)\n",
				argv[optind - 1]);
			return 2;
		}
		if (r < 0)
			return bad_value(opts[opt - OPT_SOCKET].name, optarg, r);
	}
	if (optind < argc) {
		fprintf(stderr, "ipchubd: unexpected argument \"%s\" (see --help)\n",
			argv[optind]);
		return 2;
	}
	if (conf_validate(&conf, err, sizeof(err)) < 0) {
		fprintf(stderr, "ipchubd: %s\n", err);
		return 2;
	}

	/* Writes to a closed peer must fail with EPIPE, not kill us. */
	signal(SIGPIPE, SIG_IGN);
	/* Forwarding churns buffers (256 KiB read chains, queued output):
	 * with glibc's default, freed memory at the top of the heap went
	 * back to the kernel and came back as one page fault per 4 KiB. */
	mallopt(M_TRIM_THRESHOLD, (int)IPCHUB_BROKER_HEAP_KEEP);
	mallopt(M_MMAP_THRESHOLD, (int)IPCHUB_BROKER_MMAP_MIN);

	b = broker_new(&conf, err, sizeof(err));
	if (!b) {
		fprintf(stderr, "ipchubd: %s\n", err);
		return 1;
	}
	sigint_ev = evsignal_new(broker_base(b), SIGINT, on_signal, b);
	sigterm_ev = evsignal_new(broker_base(b), SIGTERM, on_signal, b);
	if (!sigint_ev || !sigterm_ev || evsignal_add(sigint_ev, NULL) < 0 ||
	    evsignal_add(sigterm_ev, NULL) < 0) {
		fprintf(stderr, "ipchubd: cannot install signal handlers\n");
		rc = 1;
		goto out;
	}
	printf("ipchubd: listening on %s\n", broker_path(b));
	fflush(stdout);
	rc = broker_run(b) < 0 ? 1 : 0;
	log_info(&b->log, "stopped");
out:
	if (sigint_ev)
		event_free(sigint_ev);
	if (sigterm_ev)
		event_free(sigterm_ev);
	broker_free(b);
	return rc;
}
