/*
 * bconf.h - ipchub-bridge's settings: the configuration file (libinih)
 * and the command line fill the same struct (docs/FEDERATION.md).
 *
 * Model: a struct bconf owns every string it holds (copies), so it
 * outlives the file buffer and argv alike; bconf_free() releases them.
 * Scalars set twice are an error within the file; the command line, read
 * after the file, replaces them. Lists (topics out/in, exported names)
 * accumulate, file first. Every failure is a message naming the file and
 * line (or the option) in the caller's buffer.
 */
#ifndef IPCHUB_BRIDGE_BCONF_H
#define IPCHUB_BRIDGE_BCONF_H

#include <stdbool.h>
#include <stddef.h>

#define BCONF_MAX_LIST 64  /* patterns or names in one list */

enum bconf_key {
	BCONF_HUB, BCONF_NATS, BCONF_SOCKET, BCONF_PREFIX, BCONF_CREDS,
	BCONF_SEED, BCONF_USER, BCONF_PWFILE, BCONF_CA, BCONF_CERT, BCONF_KEY,
	BCONF_NSCALARS_
};

enum bconf_list { BCONF_EXPORTS, BCONF_IMPORTS, BCONF_NAMES, BCONF_NLISTS_ };

struct bconf {
	char *v[BCONF_NSCALARS_];          /* owned; NULL: not set */
	char *list[BCONF_NLISTS_][BCONF_MAX_LIST]; /* owned */
	int n[BCONF_NLISTS_];
	bool batch;                        /* --nats-batch / nats-batch = yes */
};

/* Read path into c (which may already hold values: lists grow, a scalar
 * the file sets replaces nothing set before by the file itself). The file:
 *   [bridge]  hub, nats, socket, prefix, creds, nkey-seed, user,
 *             password-file, tls-ca, tls-cert, tls-key, nats-batch (yes|no)
 *   [topics]  export = PATTERN, import = PATTERN  (repeatable)
 *   [names]   export = NAME                       (repeatable)
 * Returns 0, or -1 with a message in err (c keeps what it had before). */
int bconf_load(struct bconf *c, const char *path, char *err, size_t cap);

/* Set a scalar (replacing it) or append to a list: 0, or -1 with a
 * message (out of memory, list full). */
int bconf_set(struct bconf *c, enum bconf_key k, const char *value,
	      char *err, size_t cap);
int bconf_add(struct bconf *c, enum bconf_list l, const char *value,
	      char *err, size_t cap);

/* Free every string; c is empty afterwards. */
void bconf_free(struct bconf *c);

#endif
