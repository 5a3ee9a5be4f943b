/*
 * conf.h - the broker's configuration: every limit of proto/limits.h that
 * is marked "default", plus where and how to listen.
 *
 * Model: struct broker_conf is a plain value. conf_defaults() fills it with
 * the protocol defaults; main.c overrides fields from the command line;
 * conf_validate() checks every field against its _MIN/_MAX bounds before
 * the broker uses it, so the rest of the broker can trust the values.
 * socket_path is borrowed (argv or a literal); NULL means "resolve with
 * addr_resolve()" (environment, then the per-user default).
 */
#ifndef IPCHUB_BROKER_CONF_H
#define IPCHUB_BROKER_CONF_H

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

struct broker_conf {
	const char *socket_path;   /* borrowed; NULL = resolve */
	unsigned socket_mode;      /* chmod of the socket file, 0..0777 */
	uint32_t max_frame;        /* IPCHUB_MAX_FRAME_MIN..MAX */
	uint32_t queue_hwm;        /* IPCHUB_QUEUE_HWM_MIN..MAX */
	uint32_t max_names;        /* 1..IPCHUB_MAX_NAMES_MAX */
	uint32_t max_pending;      /* 1..IPCHUB_MAX_PENDING_MAX */
	uint32_t max_conns;        /* CONF_MAX_CONNS_MIN..MAX */
	uint32_t handshake_timeout_ms;
	uint32_t frame_timeout_ms; /* partial frame after the handshake */
	int log_level;             /* enum log_level */
};

/* Fill c with the defaults. */
void conf_defaults(struct broker_conf *c);

/* Check every field. Returns 0, or -EINVAL with a one-line message naming
 * the option and its allowed range written to err (cap bytes). */
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

#endif
