/*
 * main.c - the ipchub command-line tool: global options, dispatch to one
 * command, and the helpers every command shares (see cli.h).
 *
 * Model: single-threaded; one connection per run, opened by the command
 * that needs it and closed here. SIGINT/SIGTERM only set cli_stop and
 * interrupt the library's waits (no SA_RESTART), so each command decides
 * how to end. Errors are reported once, on stderr, as "ipchub: CODE: text"
 * with the stable code name first so scripts can match it.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "cli.h"
#include "json.h"
#include "key.h"

volatile sig_atomic_t cli_stop;

static const struct {
	const char *name;
	int (*fn)(struct cli *c, int argc, char **argv);
	const char *usage;
} commands[] = {
	{"send", cmd_send,
	 "send TO [JSON] [--fd FILE]...\n"
	 "    Send a one-way message (JSON body; none if omitted) to TO and\n"
	 "    wait until the broker has processed it: exits 1 if it could not\n"
	 "    be delivered (e.g. NO_SUCH_PEER, FDS_UNSUPPORTED). Each --fd\n"
	 "    opens FILE read-only and passes the descriptor along (up to 16).\n"},
	{"call", cmd_call,
	 "call TO [JSON] [--timeout MS]\n"
	 "    Send a request and print the reply body as one line of JSON.\n"
	 "    An error reply exits 1 with its code and message. The request\n"
	 "    deadline is --timeout (default: the global one, else 5000).\n"},
	{"listen", cmd_listen,
	 "listen NAME\n"
	 "    Register NAME and print one JSON line per message received:\n"
	 "    {\"kind\":\"send\"|\"request\"|\"error\",\"from\",\"from_id\",\"to\",\"id\",\n"
	 "    \"body\"} (errors add \"code\" and \"message\"; a message from\n"
	 "    another hub over a trusted bridge adds \"claim_uid\"). Requests are\n"
	 "    not answered. Ends with status 0 on SIGINT/SIGTERM or broker close.\n"},
	{"serve", cmd_serve,
	 "serve NAME -- CMD [ARGS...]\n"
	 "    Register NAME and answer each request by running CMD (no shell)\n"
	 "    with the request body as one JSON line on stdin and IPCHUB_FROM,\n"
	 "    IPCHUB_FROM_ID, IPCHUB_REQUEST_ID, IPCHUB_TO in its environment.\n"
	 "    Its stdout (JSON; empty means null) is the reply; a non-zero exit,\n"
	 "    a signal or invalid JSON becomes a REMOTE_ERROR reply carrying the\n"
	 "    first line of its stderr. Past the request's deadline CMD is\n"
	 "    killed and nothing is replied. Requests run one at a time.\n"},
	{"peers", cmd_peers,
	 "peers [-l]\n"
	 "    List registered names, one JSON line each:\n"
	 "    {\"name\",\"conn\",\"pid\",\"uid\"}. -l adds \"auth\" (whether the\n"
	 "    owner proved a key) and \"key\" (that key, \"ed25519:HEX\").\n"},
	{"keygen", cmd_keygen,
	 "keygen [-o FILE]\n"
	 "    Create an Ed25519 key pair: the secret goes to FILE (default\n"
	 "    $IPCHUB_KEY; created 0600, never overwritten), the public key is\n"
	 "    printed as \"ed25519:HEX\" for the broker's policy file.\n"},
	{"pub", cmd_pub, "pub TOPIC [JSON]\n    Publish JSON (none if omitted) on TOPIC; exits 1 if refused.\n"},
	{"sub", cmd_sub, "sub PATTERN [--policy drop-oldest|drop-newest|disconnect|block]\n    Subscribe (\"*\": one segment, \">\": the rest) and print one JSON line\n    per publication, and {\"kind\":\"gap\",\"count\"} where some were lost.\n"},
	{"watch", cmd_watch, "watch NAME\n    Print NAME's owner now, then every change, one JSON line each.\n"},
	{"wait", cmd_wait, "wait NAME [--timeout MS]\n    Exit 0 as soon as NAME has an owner; 1 (TIMEOUT) after MS.\n"},
	{"monitor", cmd_monitor, "monitor [--filter 'kind=K,.. name=N conn=ID topic=P dir=in|out']\n    Print one JSON line per frame the broker reads or writes (root or the\n    broker's user only).\n"},
	{"stats", cmd_stats, "stats [--prometheus]\n    Print the broker's counters as JSON, or as OpenMetrics text.\n"},
	{"ping", cmd_ping,
	 "ping [-c COUNT] [-i MS]\n"
	 "    Measure round trips to the broker (COUNT, default 1; MS between\n"
	 "    them, default 0).\n"},
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

void cli_usage(FILE *f, const char *cmd)
{
	size_t i;

	for (i = 0; cmd && i < N_COMMANDS; i++) {
		if (strcmp(cmd, commands[i].name) == 0) {
			fprintf(f, "usage: ipchub [OPTIONS] %s", commands[i].usage);
			return;
		}
	}
	fputs("usage: ipchub [OPTIONS] COMMAND [ARGS]\n"
	      "\n"
	      "Options:\n"
	      "  -s, --socket PATH   broker socket (default: $IPCHUB_SOCKET,\n"
	      "                      $XDG_RUNTIME_DIR/ipchub.sock,\n"
	      "                      /tmp/ipchub-UID/ipchub.sock; @NAME: abstract)\n"
	      "  -n, --name NAME     register NAME first (stamped on what is sent)\n"
	      "  -t, --timeout MS    deadline for connecting and each wait (5000)\n"
	      "  -k, --key FILE      authenticate with this secret key (default:\n"
	      "                      $IPCHUB_KEY; none if unset)\n"
	      "  -v, --verbose       log to stderr (serve: one line per request)\n"
	      "  -h, --help          show this help (COMMAND --help: its help)\n"
	      "  -V, --version       show the version\n"
	      "\n"
	      "Commands:\n",
	      f);
	for (i = 0; i < N_COMMANDS; i++)
		fprintf(f, "  %s", commands[i].usage);
	fputs("\nExit status: 0 success, 1 ipchub error, 2 usage error.\n", f);
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fputs("ipchub: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	cli_usage(stderr, cmd);
	return CLI_EXIT_USAGE;
}

int cli_fail(int code, const char *text)
{
	fprintf(stderr, "ipchub: %s: %s\n", ipchub_code_name(code),
		text && *text ? text : ipchub_strerror(code));
	return CLI_EXIT_FAIL;
}

int cli_failf(int code, const char *fmt, ...)
{
	char buf[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return cli_fail(code, buf);
}

int cli_fail_msg(int code, const ipchub_msg *m)
{
	if (m && ipchub_msg_to(m))
		return cli_failf(code, "%s (to '%s')", ipchub_msg_error_text(m),
				 ipchub_msg_to(m));
	return cli_fail(code, m ? ipchub_msg_error_text(m) : NULL);
}

bool cli_parse_ms(const char *s, int *out)
{
	char *end;
	long v;

	if (!s || *s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < 0 || v > INT_MAX)
		return false;
	*out = (int)v;
	return true;
}

bool cli_is_help(const char *arg)
{
	return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0;
}

int cli_connect(struct cli *c)
{
	struct ipchub_opts o = {
		.socket = c->socket,
		.timeout_ms = c->timeout_ms,
		.agent = "ipchub-cli/" IPCHUB_VERSION_STRING,
		.key = c->key,
	};
	const char *kp = c->key ? c->key : getenv("IPCHUB_KEY");
	int rc;

	if (kp && *kp) {
		/* The library only says BAD_KEY; check first to say why. */
		struct key k;
		char err[512];

		rc = key_load(kp, &k, err, sizeof(err));
		if (rc)
			return cli_fail(rc, err);
		key_wipe(&k);
	}
	rc = ipchub_connect(&o, &c->h);

	if (rc == IPCHUB_E_NO_BROKER) {
		char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 2];

		/* The handle (and its resolved path) is gone: resolve again,
		 * the same way the library did, to say where we looked. */
		if (addr_resolve(c->socket, path, sizeof(path)) < 0)
			snprintf(path, sizeof(path), "%s", "the socket path");
		return cli_failf(rc, "no broker is listening at %s", path);
	}
	if (rc)
		return cli_fail(rc, NULL);
	if (c->name) {
		rc = ipchub_register(c->h, c->name, c->timeout_ms);
		if (rc)
			return cli_failf(rc, "cannot register '%s': %s",
					 c->name, ipchub_strerror(rc));
	}
	return 0;
}

int cli_body_from_json(const char *json, ipchub_pack *pk)
{
	char err[256];
	int rc;

	ipchub_pack_init(pk);
	if (!json)
		return 0;
	rc = cli_json_text_to_msgpack(json, strlen(json), &pk->pk, err,
				      sizeof(err));
	return rc ? cli_fail(rc, err) : 0;
}

static void on_signal(int sig)
{
	(void)sig;
	cli_stop = 1;
}

static void install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART: waits must see EINTR */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"socket", required_argument, NULL, 's'},
		{"name", required_argument, NULL, 'n'},
		{"timeout", required_argument, NULL, 't'},
		{"key", required_argument, NULL, 'k'},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	struct cli c = {.timeout_ms = CLI_TIMEOUT_MS_DEFAULT};
	const char *cmd;
	int opt, rc;
	size_t i;

	/* '+': stop at the command, whose own options follow it. */
	while ((opt = getopt_long(argc, argv, "+s:n:t:k:vhV", longopts, NULL)) !=
	       -1) {
		switch (opt) {
		case 's':
			c.socket = optarg;
			break;
		case 'n':
			c.name = optarg;
			break;
		case 'k':
			c.key = optarg;
			break;
		case 't':
			if (!cli_parse_ms(optarg, &c.timeout_ms) ||
			    c.timeout_ms == 0)
				return cli_usage_error(NULL,
						       "invalid --timeout '%s'",
						       optarg);
			c.timeout_set = true;
			break;
		case 'v':
			c.verbose++;
			break;
		case 'h':
			cli_usage(stdout, NULL);
			return CLI_EXIT_OK;
		case 'V':
			printf("ipchub %s\n", IPCHUB_VERSION_STRING);
			return CLI_EXIT_OK;
		default:
			cli_usage(stderr, NULL);
			return CLI_EXIT_USAGE;
		}
	}
	if (optind >= argc)
		return cli_usage_error(NULL, "missing command");
	cmd = argv[optind];
	for (i = 0; i < N_COMMANDS; i++)
		if (strcmp(cmd, commands[i].name) == 0)
			break;
	if (i == N_COMMANDS)
		return cli_usage_error(NULL, "unknown command '%s'", cmd);
	for (int a = optind + 1; a < argc && strcmp(argv[a], "--") != 0; a++) {
		if (cli_is_help(argv[a])) {
			cli_usage(stdout, cmd);
			return CLI_EXIT_OK;
		}
	}

	install_signals();
	rc = commands[i].fn(&c, argc - optind, argv + optind);
	ipchub_close(c.h);
	if (fflush(stdout) != 0 && rc == CLI_EXIT_OK)
		rc = CLI_EXIT_FAIL;
	return rc;
}
