/*
 * conf.h - the broker's configuration: every limit of proto/limits.h that
 * is marked "default", plus where and how to listen and log.
 *
 * Model: struct broker_conf is a plain value. conf_defaults() fills it with
 * the protocol defaults; the option table conf_opts[] describes every
 * setting once (its key, type, bounds, whether it can change on reload and
 * its help text), and both the command line (main.c builds getopt's table
 * from it) and the configuration file (conf_file.c) set fields only through
 * conf_set() on a row of that table. Adding a setting therefore means: add
 * a field here and a row in conf.c; it becomes a flag, a config key, a
 * line of --help and of --check-config, and is compared and applied by
 * broker_reload() automatically.
 *
 * Strings: a conf filled by conf_set() owns its string fields (heap
 * copies; release them with conf_clear()). Code that assigns a string
 * field directly (tests) keeps it borrowed and must not call conf_clear()
 * on that conf. broker_new() always deep-copies (conf_copy()), so the
 * broker never refers to the caller's strings.
 *
 * conf_validate() checks every field against its bounds before the broker
 * uses it, so the rest of the broker can trust the values.
 */
#ifndef IPCHUB_BROKER_CONF_H
#define IPCHUB_BROKER_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "limits.h"

/* Broker-local limits (not part of the protocol). */

/* Lower bound of --max-conns: at least one client must be able to connect. */
#define CONF_MAX_CONNS_MIN 1u
/* Upper bound of --max-conns: far above any fd limit we expect; it only
 * keeps arithmetic on counts trivially safe. */
#define CONF_MAX_CONNS_MAX (1u << 24)
/* Handshake timeout bounds: shorter than 100 ms breaks slow clients, more
 * than a minute lets idle half-open connections pin fds. */
#define CONF_HANDSHAKE_TIMEOUT_MIN_MS 100u
#define CONF_HANDSHAKE_TIMEOUT_MAX_MS 60000u
/* Partial-frame timeout bounds: the same reasoning, but a frame may be up
 * to 256 MiB, so allow up to ten minutes. */
#define CONF_FRAME_TIMEOUT_MIN_MS 100u
#define CONF_FRAME_TIMEOUT_MAX_MS 600000u
/* A closing connection (after a fatal error or BYE) gets this long to take
 * what is queued to it before its socket is closed anyway. */
#define CONF_CLOSE_FLUSH_MS 2000u
/* On shutdown, the broker waits this long for clients to take their BYE. */
#define CONF_SHUTDOWN_FLUSH_MS 2000u
/* Connections accepted per listener callback before other events run. */
#define CONF_ACCEPT_BATCH 64u
/* After EMFILE/ENFILE the listener pauses this long instead of spinning. */
#define CONF_ACCEPT_BACKOFF_MS 100u
/* Default permission bits of a filesystem socket: owner only. */
#define CONF_SOCKET_MODE_DEFAULT 0600u
/* Longest value accepted for a string setting (a path): sockaddr_un and
 * PATH_MAX are both smaller, so nothing legitimate is refused. */
#define CONF_STR_MAX 4096u

/* The system-wide hub (ipchubd --system): its default configuration file
 * (only read if it exists) and socket. IPCHUB_SYSCONFDIR comes from the
 * build (CMAKE_INSTALL_FULL_SYSCONFDIR). */
#ifndef IPCHUB_SYSCONFDIR
#define IPCHUB_SYSCONFDIR "/etc"
#endif
#define CONF_SYSTEM_CONFIG IPCHUB_SYSCONFDIR "/ipchub/ipchubd.conf"
#define CONF_SYSTEM_SOCKET "/run/ipchub/ipchub.sock"
/* A per-user hub's default configuration file, under $XDG_CONFIG_HOME
 * (else ~/.config); only read if it exists. */
#define CONF_USER_CONFIG "ipchub/ipchubd.conf"

struct broker_conf {
	const char *socket_path;   /* NULL = resolve (see conf.h top) */
	unsigned socket_mode;      /* chmod of the socket file, 0..0777 */
	uint32_t max_frame;        /* IPCHUB_MAX_FRAME_MIN..MAX */
	uint32_t queue_hwm;        /* IPCHUB_QUEUE_HWM_MIN..MAX */
	uint32_t max_names;        /* 1..IPCHUB_MAX_NAMES_MAX */
	uint32_t max_pending;      /* 1..IPCHUB_MAX_PENDING_MAX */
	uint32_t max_conns;        /* CONF_MAX_CONNS_MIN..MAX */
	uint32_t max_fds_per_conn; /* fd quota per receiver and sender (fdq.h) */
	uint32_t max_fds_total;    /* fds the broker holds in flight */
	uint32_t handshake_timeout_ms;
	uint32_t frame_timeout_ms; /* partial frame after the handshake */
	int log_level;             /* enum log_level */
	/* Authentication (auth.h, policy.h). */
	const char *policy_path;   /* NULL = no policy */
	bool require_auth;         /* refuse connections that do not AUTH */
	uint32_t max_handshakes;   /* IPCHUB_MAX_HANDSHAKES_MIN..MAX */
	/* Pub/sub (pubsub.h, presence.h, monitor.h). */
	uint32_t max_subs;         /* subscriptions + watches + taps per conn */
	uint32_t sub_queue;        /* publications queued per subscription */
	int log_target;            /* enum log_target */
	/* Not a setting: a listening socket inherited from the service
	 * manager (socket activation), or -1 to bind socket_path.
	 * broker_new() takes ownership of it, whether it succeeds or not. */
	int listen_fd;
};

/* Value types of settings. */
enum conf_type {
	CONF_T_STR,        /* const char *; "" is rejected */
	CONF_T_SIZE,       /* uint32_t; bytes, K/M/G suffixes */
	CONF_T_U32,        /* uint32_t; plain decimal */
	CONF_T_MODE,       /* unsigned; octal permission bits */
	CONF_T_BOOL,       /* bool; flag takes no value; key: true/false */
	CONF_T_LOG_LEVEL,  /* int; error|warn|info|debug */
	CONF_T_LOG_TARGET  /* int; auto|stderr|syslog|journal */
};

/* When a changed value takes effect. */
enum conf_apply {
	CONF_LIVE,         /* applied by SIGHUP (broker_reload) */
	CONF_RESTART       /* kept until ipchubd restarts; reload warns */
};

struct conf_opt {
	const char *name;  /* the flag: --NAME; the key: NAME with '-' -> '_' */
	enum conf_type type;
	size_t off;        /* offsetof(struct broker_conf, field) */
	uint64_t min, max; /* bounds of numeric types (inclusive) */
	enum conf_apply apply;
	const char *arg;   /* metavariable in --help, e.g. "BYTES" */
	const char *help;  /* one line, no trailing newline */
};

/* The table, in --help order, and its length. */
extern const struct conf_opt conf_opts[];
extern const size_t conf_nopts;

/* Fill c with the defaults (strings NULL, listen_fd -1). */
void conf_defaults(struct broker_conf *c);

/* Free the strings of a conf filled by conf_set()/conf_copy() and reset
 * them to NULL. Accepts a conf whose string fields are all NULL. */
void conf_clear(struct broker_conf *c);

/* Deep copy src into dst (dst's previous strings are not freed). Returns
 * 0 or -ENOMEM; on failure dst holds no allocation of this call. */
int conf_copy(struct broker_conf *dst, const struct broker_conf *src);

/* Row whose config key is key ("queue_hwm"), or NULL. */
const struct conf_opt *conf_find_key(const char *key);

/* Write the key of o ("queue_hwm") into buf (cap bytes); returns buf. */
const char *conf_key(const struct conf_opt *o, char *buf, size_t cap);

/* Parse val (NULL for a bool flag given without value = true) and store
 * it in o's field of c. Returns 0, or -EINVAL / -ERANGE with a message
 * naming what is wrong with the value in err; c is untouched on failure.
 * Bounds are checked by conf_validate(), not here. */
int conf_set(struct broker_conf *c, const struct conf_opt *o,
	     const char *val, char *err, size_t cap);

/* Format o's value in c the way a config file would spell it. */
void conf_format(const struct broker_conf *c, const struct conf_opt *o,
		 char *buf, size_t cap);

/* Whether o's field differs between a and b. */
bool conf_differs(const struct broker_conf *a, const struct broker_conf *b,
		  const struct conf_opt *o);

/* Copy o's field from src into dst (strings duplicated, the old one freed:
 * dst must own its strings). Returns 0 or -ENOMEM (dst untouched). */
int conf_assign(struct broker_conf *dst, const struct broker_conf *src,
		const struct conf_opt *o);

/* Check o's field in c against its bounds. Returns 0, or -EINVAL with a
 * message naming the key, the flag and the allowed range. */
int conf_check(const struct broker_conf *c, const struct conf_opt *o,
	       char *err, size_t cap);

/* Check every field. Returns 0, or -EINVAL with a one-line message naming
 * the key, its flag and its allowed range written to err (cap bytes). */
int conf_validate(const struct broker_conf *c, char *err, size_t cap);

/* Parse a byte count: decimal digits with an optional K, M or G suffix
 * (binary multiples, case-insensitive, optional trailing "iB"/"B").
 * Returns 0 and stores into *out, or -EINVAL (syntax) / -ERANGE (over
 * UINT32_MAX); *out is untouched on failure. */
int conf_parse_size(const char *s, uint32_t *out);

/* Parse a plain decimal count into *out. Returns 0, -EINVAL or -ERANGE. */
int conf_parse_u32(const char *s, uint32_t *out);

/* Parse an octal permission mode (e.g. "0600", "660"), at most 0777.
 * Returns 0, -EINVAL or -ERANGE. */
int conf_parse_mode(const char *s, unsigned *out);

/* Parse true/false, yes/no, on/off, 1/0. Returns 0 or -EINVAL. */
int conf_parse_bool(const char *s, bool *out);

#endif
