/*
 * main.c - ipchubd, the process around the broker: command line,
 * configuration file, socket activation, readiness, signals.
 *
 * Model: the settings are described once, by conf_opts[] (conf.c). The
 * getopt table is built from it, so every setting is a flag --NAME and a
 * config key NAME (with '_' for '-'), plus the process options of this
 * file (--config, --check-config, --system, --help, --version). The
 * effective configuration is always composed the same way, at start and
 * on SIGHUP: defaults, then the configuration file, then the flags (the
 * command line wins). The flags are kept (struct cmdline points into
 * argv) for the reloads.
 *
 * Systemd: a socket passed with LISTEN_FDS/LISTEN_PID (sd_listen_fds) is
 * used instead of binding; readiness, reloads and the stop are reported
 * with sd_notify (READY=1, RELOADING=1, STOPPING=1, STATUS=...). Both are
 * no-ops without systemd, and the ready line on stdout is printed either
 * way.
 *
 * Signals (libevent signal events, so handlers run in the loop):
 * SIGINT/SIGTERM stop gracefully (broker_stop); a second one exits at once.
 * SIGHUP reloads (broker_reload); a failed reload is logged with its
 * reason and the running configuration stays.
 *
 * Exit status: 0 after a clean stop (or a valid --check-config), 1 when
 * the broker cannot start, 2 for a bad command line or configuration.
 */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <systemd/sd-daemon.h>

#include "broker.h"
#include "conf.h"
#include "conf_file.h"
#include "log.h"
#include "reload.h"

#ifndef IPCHUB_VERSION
#define IPCHUB_VERSION "unknown"
#endif

/* Process options (not settings); values past the table's 256 + index. */
enum {
	OPT_CONFIG = 0x1000,
	OPT_CHECK_CONFIG,
	OPT_SYSTEM,
};

/* The command line, parsed: process options and the setting flags in
 * order (values borrowed from argv). */
struct cmdline {
	const char *config;   /* --config, or NULL: the default if it exists */
	bool check;           /* --check-config */
	bool system;          /* --system */
	struct {
		const struct conf_opt *o;
		const char *val;  /* NULL: bool flag without a value */
	} *set;
	size_t nset;
};

static void usage(FILE *f)
{
	struct broker_conf d;
	char key[64], def[128], left[64];

	conf_defaults(&d);
	fprintf(f,
		"Usage: ipchubd [OPTION]...\n"
		"Local inter-process message hub: clients connect to a Unix socket,\n"
		"register names and exchange messages routed by name.\n"
		"\n"
		"  --config FILE        read settings from FILE (default: %s\n"
		"                       with --system, else $XDG_CONFIG_HOME/%s;\n"
		"                       a default file is read only if it exists)\n"
		"  --check-config       validate the configuration, print the\n"
		"                       effective settings and exit (0 = valid)\n"
		"  --system             the system-wide hub: default socket %s\n"
		"  -h, --help           show this help and exit\n"
		"  -V, --version        show the version and exit\n"
		"\n"
		"Settings (each also a config-file key, shown in brackets; a flag\n"
		"overrides the file):\n",
		CONF_SYSTEM_CONFIG, CONF_USER_CONFIG, CONF_SYSTEM_SOCKET);
	for (size_t i = 0; i < conf_nopts; i++) {
		const struct conf_opt *o = &conf_opts[i];

		snprintf(left, sizeof(left), "--%s%s%s", o->name,
			 o->type == CONF_T_BOOL ? "[=BOOL]" : " ",
			 o->type == CONF_T_BOOL ? "" : o->arg);
		conf_format(&d, o, def, sizeof(def));
		fprintf(f, "  %-20s %s\n", left, o->help);
		if (o->type == CONF_T_MODE)
			fprintf(f, "  %-20s [%s] default %s; 0000..%04llo%s\n", "",
				conf_key(o, key, sizeof(key)), def,
				(unsigned long long)o->max,
				o->apply == CONF_RESTART ? "; restart to change" : "");
		else if (o->type == CONF_T_STR || o->type == CONF_T_BOOL ||
		    o->type == CONF_T_LOG_LEVEL || o->type == CONF_T_LOG_TARGET)
			fprintf(f, "  %-20s [%s] default %s%s\n", "",
				conf_key(o, key, sizeof(key)),
				def[0] ? def : "(see below)",
				o->apply == CONF_RESTART ? "; restart to change" : "");
		else
			fprintf(f, "  %-20s [%s] default %s; %llu..%llu%s\n", "",
				conf_key(o, key, sizeof(key)), def,
				(unsigned long long)o->min,
				(unsigned long long)o->max,
				o->apply == CONF_RESTART ? "; restart to change" : "");
	}
	fprintf(f,
		"\n"
		"Default socket: $IPCHUB_SOCKET, else $XDG_RUNTIME_DIR/ipchub.sock,\n"
		"else /tmp/ipchub-<uid>/ipchub.sock; a socket passed by systemd\n"
		"(socket activation) is used instead. Sizes take K/M/G suffixes.\n"
		"Prints \"ipchubd: listening on PATH\" on stdout when ready.\n"
		"SIGINT/SIGTERM stop gracefully, SIGHUP reloads the configuration.\n"
		"Exit status: 0 clean stop, 1 cannot start, 2 bad configuration.\n"
		"See ipchubd(8).\n");
}

/* Parse argv into cl. Returns -1 to continue, else the exit status. */
static int parse_cmdline(int argc, char **argv, struct cmdline *cl)
{
	struct option *opts;
	size_t n = 0;
	int opt, rc = -1;

	memset(cl, 0, sizeof(*cl));
	opts = calloc(conf_nopts + 6, sizeof(*opts));
	cl->set = calloc((size_t)argc + 1, sizeof(*cl->set));
	if (!opts || !cl->set) {
		fprintf(stderr, "ipchubd: out of memory\n");
		free(opts);
		return 1;
	}
	for (size_t i = 0; i < conf_nopts; i++, n++) {
		opts[n].name = conf_opts[i].name;
		opts[n].has_arg = conf_opts[i].type == CONF_T_BOOL
					  ? optional_argument
					  : required_argument;
		opts[n].val = 256 + (int)i;
	}
	opts[n++] = (struct option){"config", required_argument, NULL, OPT_CONFIG};
	opts[n++] = (struct option){"check-config", no_argument, NULL,
				    OPT_CHECK_CONFIG};
	opts[n++] = (struct option){"system", no_argument, NULL, OPT_SYSTEM};
	opts[n++] = (struct option){"help", no_argument, NULL, 'h'};
	opts[n++] = (struct option){"version", no_argument, NULL, 'V'};

	opterr = 0;
	while (rc < 0 && (opt = getopt_long(argc, argv, ":hV", opts, NULL)) != -1) {
		if (opt >= 256 && opt < 256 + (int)conf_nopts) {
			const struct conf_opt *o = &conf_opts[opt - 256];
			struct broker_conf scratch;
			char msg[256];

			/* Check the value now, so a typo is reported as a
			 * command-line error before anything else happens. */
			conf_defaults(&scratch);
			if (conf_set(&scratch, o, optarg, msg, sizeof(msg)) < 0) {
				fprintf(stderr, "ipchubd: --%s: %s\n", o->name, msg);
				rc = 2;
			}
			conf_clear(&scratch);
			cl->set[cl->nset].o = o;
			cl->set[cl->nset++].val = optarg;
			continue;
		}
		switch (opt) {
		case OPT_CONFIG:
			if (!*optarg) {
				fprintf(stderr, "ipchubd: --config: empty path\n");
				rc = 2;
			}
			cl->config = optarg;
			break;
		case OPT_CHECK_CONFIG:
			cl->check = true;
			break;
		case OPT_SYSTEM:
			cl->system = true;
			break;
		case 'h':
			usage(stdout);
			rc = 0;
			break;
		case 'V':
			printf("ipchubd %s (protocol %u)\n", IPCHUB_VERSION,
			       IPCHUB_PROTO_VERSION_MAX);
			rc = 0;
			break;
		case ':':
			fprintf(stderr, "ipchubd: option %s needs a value (see --help)\n",
				argv[optind - 1]);
			rc = 2;
			break;
		default:
			fprintf(stderr, "ipchubd: unknown option %s (see --help)\n",
				argv[optind - 1]);
			rc = 2;
			break;
		}
	}
	if (rc < 0 && optind < argc) {
		fprintf(stderr, "ipchubd: unexpected argument \"%s\" (see --help)\n",
			argv[optind]);
		rc = 2;
	}
	free(opts);
	return rc;
}

/* The configuration file to read: --config, else the default one if it
 * exists (NULL: none). buf holds a composed default path. */
static const char *config_path(const struct cmdline *cl, char *buf, size_t cap)
{
	const char *xdg, *home;
	int n;

	if (cl->config)
		return cl->config;
	if (cl->system) {
		snprintf(buf, cap, "%s", CONF_SYSTEM_CONFIG);
	} else if ((xdg = getenv("XDG_CONFIG_HOME")) && xdg[0] == '/') {
		n = snprintf(buf, cap, "%s/%s", xdg, CONF_USER_CONFIG);
		if (n < 0 || (size_t)n >= cap)
			return NULL;
	} else if ((home = getenv("HOME")) && home[0] == '/') {
		n = snprintf(buf, cap, "%s/.config/%s", home, CONF_USER_CONFIG);
		if (n < 0 || (size_t)n >= cap)
			return NULL;
	} else {
		return NULL;
	}
	return access(buf, F_OK) == 0 ? buf : NULL;
}

/* Compose the effective configuration into *out (which then owns its
 * strings): defaults, file, flags; then validate. *file gets the file
 * read (NULL: none; points into pathbuf or argv). Returns 0, or -1 with
 * the reason in err. */
static int compose_conf(const struct cmdline *cl, struct broker_conf *out,
			const char **file, char *pathbuf, size_t pathcap,
			char *err, size_t cap)
{
	struct broker_conf c;
	char msg[256];

	conf_defaults(&c);
	*file = config_path(cl, pathbuf, pathcap);
	if (cl->system &&
	    conf_set(&c, conf_find_key("socket"), CONF_SYSTEM_SOCKET, msg,
		     sizeof(msg)) < 0)
		goto bad_msg;
	if (*file && conf_file_load(&c, *file, err, cap) < 0)
		goto bad;
	for (size_t i = 0; i < cl->nset; i++) {
		if (conf_set(&c, cl->set[i].o, cl->set[i].val, msg,
			     sizeof(msg)) < 0) {
			snprintf(err, cap, "--%s: %s", cl->set[i].o->name, msg);
			goto bad;
		}
	}
	if (conf_validate(&c, err, cap) < 0)
		goto bad;
	*out = c;
	return 0;

bad_msg:
	snprintf(err, cap, "%s", msg);
bad:
	conf_clear(&c);
	return -1;
}

static int check_config(const struct cmdline *cl)
{
	struct broker_conf c;
	const char *file;
	char path[4096], err[1024], key[64], val[CONF_STR_MAX + 1];

	if (compose_conf(cl, &c, &file, path, sizeof(path), err, sizeof(err)) < 0) {
		fprintf(stderr, "ipchubd: %s\n", err);
		return 2;
	}
	printf("# ipchubd %s: configuration is valid\n", IPCHUB_VERSION);
	printf("# file: %s\n", file ? file : "(none)");
	for (size_t i = 0; i < conf_nopts; i++) {
		conf_format(&c, &conf_opts[i], val, sizeof(val));
		if (conf_opts[i].type == CONF_T_STR && !val[0])
			printf("# %s = (default)\n",
			       conf_key(&conf_opts[i], key, sizeof(key)));
		else
			printf("%s = %s\n",
			       conf_key(&conf_opts[i], key, sizeof(key)), val);
	}
	conf_clear(&c);
	return 0;
}

struct daemon {
	struct broker *b;
	const struct cmdline *cl;
};

static void on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;
	struct broker *b = d->b;

	(void)what;
	if (b->stopping) {
		log_warn(&b->log, "signal %d during shutdown: exiting now",
			 (int)sig);
		event_base_loopbreak(broker_base(b));
		return;
	}
	log_info(&b->log, "signal %d: stopping", (int)sig);
	sd_notify(0, "STOPPING=1\nSTATUS=stopping");
	broker_stop(b);
}

static void on_sighup(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;
	struct broker *b = d->b;
	struct broker_conf nc;
	const char *file;
	char path[4096], err[1024];

	(void)sig;
	(void)what;
	if (b->stopping)
		return;
	sd_notify(0, "RELOADING=1\nSTATUS=reloading the configuration");
	log_info(&b->log, "SIGHUP: reloading the configuration");
	if (compose_conf(d->cl, &nc, &file, path, sizeof(path), err,
			 sizeof(err)) < 0) {
		log_error(&b->log,
			  "reload failed, keeping the running configuration: %s",
			  err);
	} else {
		if (broker_reload(b, &nc, err, sizeof(err)) < 0)
			log_error(&b->log,
				  "reload failed, keeping the running configuration: %s",
				  err);
		conf_clear(&nc);
	}
	sd_notifyf(0, "READY=1\nSTATUS=listening on %s", broker_path(b));
}

static void block_signals(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
}

/* Socket activation: the one socket systemd passed, or -1 for none. */
static int inherited_socket(char *err, size_t cap)
{
	int n = sd_listen_fds(1);

	if (n < 0) {
		snprintf(err, cap, "LISTEN_FDS: %s", strerror(-n));
		return -2;
	}
	if (n == 0)
		return -1;
	if (n > 1) {
		snprintf(err, cap,
			 "the service manager passed %d sockets; ipchubd listens on "
			 "exactly one (check ListenStream= in the socket unit)",
			 n);
		for (int i = 0; i < n; i++)
			close(SD_LISTEN_FDS_START + i);
		return -2;
	}
	return SD_LISTEN_FDS_START;
}

int main(int argc, char **argv)
{
	struct cmdline cl;
	struct broker_conf conf;
	struct daemon d;
	struct event *ev[3] = {NULL, NULL, NULL};
	const char *file;
	char path[4096], err[1024];
	int rc, fd;

	rc = parse_cmdline(argc, argv, &cl);
	if (rc >= 0)
		goto out_cl;
	if (cl.check) {
		rc = check_config(&cl);
		goto out_cl;
	}
	if (compose_conf(&cl, &conf, &file, path, sizeof(path), err,
			 sizeof(err)) < 0) {
		fprintf(stderr, "ipchubd: %s\n", err);
		rc = 2;
		goto out_cl;
	}
	fd = inherited_socket(err, sizeof(err));
	if (fd == -2) {
		fprintf(stderr, "ipchubd: %s\n", err);
		conf_clear(&conf);
		rc = 1;
		goto out_cl;
	}
	conf.listen_fd = fd;

	/* Writes to a closed peer must fail with EPIPE, not kill us. */
	signal(SIGPIPE, SIG_IGN);
	/* Forwarding churns buffers (256 KiB read chains, queued output):
	 * with glibc's default, freed memory at the top of the heap went
	 * back to the kernel and came back as one page fault per 4 KiB. */
	mallopt(M_TRIM_THRESHOLD, (int)IPCHUB_BROKER_HEAP_KEEP);
	mallopt(M_MMAP_THRESHOLD, (int)IPCHUB_BROKER_MMAP_MIN);

	d.cl = &cl;
	d.b = broker_new(&conf, err, sizeof(err));
	conf_clear(&conf);
	if (!d.b) {
		fprintf(stderr, "ipchubd: %s\n", err);
		rc = 1;
		goto out_cl;
	}
	log_info(&d.b->log, "ipchubd %s: configuration %s%s", IPCHUB_VERSION,
		 file ? file : "(no file)",
		 d.b->lis.x.from_manager ? "; socket from the service manager" : "");
	ev[0] = evsignal_new(broker_base(d.b), SIGINT, on_stop_signal, &d);
	ev[1] = evsignal_new(broker_base(d.b), SIGTERM, on_stop_signal, &d);
	ev[2] = evsignal_new(broker_base(d.b), SIGHUP, on_sighup, &d);
	for (int i = 0; i < 3; i++) {
		if (!ev[i] || evsignal_add(ev[i], NULL) < 0) {
			fprintf(stderr, "ipchubd: cannot install signal handlers\n");
			block_signals();
			rc = 1;
			goto out;
		}
	}
	printf("ipchubd: listening on %s\n", broker_path(d.b));
	fflush(stdout);
	sd_notifyf(0, "READY=1\nSTATUS=listening on %s", broker_path(d.b));
	rc = broker_run(d.b) < 0 ? 1 : 0;
	/* From here on a late SIGTERM or SIGHUP must not kill us with the
	 * default action while we clean up: keep them pending instead. */
	block_signals();
	log_info(&d.b->log, "stopped");
out:
	for (int i = 0; i < 3; i++)
		if (ev[i])
			event_free(ev[i]);
	broker_free(d.b);
out_cl:
	free(cl.set);
	return rc;
}
