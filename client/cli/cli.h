/*
 * cli.h - shared state and helpers of the ipchub command-line tool
 * (internal to client/cli).
 *
 * Model: main.c parses the global options into a struct cli and hands
 * the remaining arguments to one command function. A command connects on
 * demand (cli_connect), owns the connection until it returns, and returns
 * the process exit status: 0 success, 1 an ipchub error (reported with
 * exactly one stderr line "ipchub: CODE: text"), 2 a usage error.
 */
#ifndef IPCHUB_CLI_H
#define IPCHUB_CLI_H

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>

#include "ipchub.h"

#define CLI_EXIT_OK 0
#define CLI_EXIT_FAIL 1
#define CLI_EXIT_USAGE 2

/* Default deadline (ms) for connecting, registering, pings and calls. */
#define CLI_TIMEOUT_MS_DEFAULT 5000

struct cli {
	const char *socket;  /* --socket, or NULL */
	const char *name;    /* --name, or NULL */
	const char *key;     /* --key, or NULL ($IPCHUB_KEY) */
	int timeout_ms;      /* --timeout, or CLI_TIMEOUT_MS_DEFAULT */
	bool timeout_set;    /* --timeout was given */
	int verbose;         /* -v count */
	ipchub *h;           /* set by cli_connect, closed by main */
};

/* Set by SIGINT/SIGTERM (installed without SA_RESTART, so waits in the
 * library return IPCHUB_E_INTERRUPTED). */
extern volatile sig_atomic_t cli_stop;

/* Connect to the broker and register --name if given. Returns 0 or
 * CLI_EXIT_FAIL after printing the error. */
int cli_connect(struct cli *c);

/* Print "ipchub: CODE: text" (text defaults to ipchub_strerror(code));
 * returns CLI_EXIT_FAIL. */
int cli_fail(int code, const char *text);
/* Same with a printf-style text. */
int cli_failf(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Report an error message (kind 10 or error reply) with its own text. */
int cli_fail_msg(int code, const ipchub_msg *m);

/* Print "ipchub: <text>" and the usage of cmd (NULL: global) to stderr;
 * returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Print the usage of cmd (NULL: global) to f. */
void cli_usage(FILE *f, const char *cmd);

/* Parse a non-negative decimal millisecond count (<= INT_MAX). */
bool cli_parse_ms(const char *s, int *out);

/* Whether arg is -h or --help. */
bool cli_is_help(const char *arg);

/* Encode JSON text (NULL: no body) as a body in *pk (initialised here;
 * the caller destroys it). Returns 0 or CLI_EXIT_FAIL after printing. */
int cli_body_from_json(const char *json, ipchub_pack *pk);

/* Most --fd options of `ipchub send` (one frame's descriptors). */
#define IPCHUB_CLI_MAX_FDS 16
int cmd_send(struct cli *c, int argc, char **argv);
int cmd_call(struct cli *c, int argc, char **argv);
int cmd_listen(struct cli *c, int argc, char **argv);
int cmd_serve(struct cli *c, int argc, char **argv);
int cmd_peers(struct cli *c, int argc, char **argv);
int cmd_ping(struct cli *c, int argc, char **argv);
int cmd_keygen(struct cli *c, int argc, char **argv);
int cmd_pub(struct cli *c, int argc, char **argv);
int cmd_sub(struct cli *c, int argc, char **argv);
int cmd_watch(struct cli *c, int argc, char **argv);
int cmd_wait(struct cli *c, int argc, char **argv);
int cmd_monitor(struct cli *c, int argc, char **argv);
int cmd_stats(struct cli *c, int argc, char **argv);

/* Shared by the streaming commands (cmd_sub.c, cmd_watch.c): print one
 * JSON value as a line (consumes j; CLI_EXIT_* on failure), and the loop
 * that prints describe(m) for every message until a signal or close. */
#include <jansson.h>
int cli_print_json(json_t *j);
int cli_recv_loop(struct cli *c, json_t *(*describe)(const ipchub_msg *m));
json_t *cli_presence_json(const ipchub_msg *m);

#endif
