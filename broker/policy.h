/*
 * policy.h - the broker's authorization policy: which public keys and
 * which uids may own which names (broker option --policy FILE).
 *
 * File format (also in SECURITY.md): UTF-8/ASCII text, one rule a line;
 * '#' starts a comment (to the end of the line); blank lines are ignored.
 *
 *     allow PATTERN [key ed25519:HEX] [uid UID]
 *     monitor [key ed25519:HEX] [uid UID]
 *
 * PATTERN is an exact name ("svc.db"), a prefix pattern ("svc.*": every
 * name that starts with "svc."), or "*" (every name). A rule needs at
 * least one of `key` (the text form of an Ed25519 public key, see
 * transcript.h) and `uid` (a number or a user name, resolved when the file
 * is loaded); when it has both, a connection must satisfy both. A name
 * matched by the pattern of at least one rule is *covered*: only a
 * connection satisfying one of the rules that match it may register it.
 * Names no rule matches stay open. Every key that appears in the file is
 * a *known* key: AUTH succeeds only for known keys. A `monitor` rule
 * lets connections that satisfy it tap traffic (MONITOR), besides root
 * and the broker's own uid; it covers no name.
 *
 * Model: struct policy is immutable once loaded and owned by whoever
 * loaded it (the broker's auth context); reloading builds a new one and
 * swaps. Loading fails closed: a missing, unreadable, empty (no rule),
 * oversized, group/other-writable or malformed file is an error naming
 * the file and, for syntax errors, the line.
 */
#ifndef IPCHUB_BROKER_POLICY_H
#define IPCHUB_BROKER_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "limits.h"
#include "transcript.h"

enum policy_match {
	POLICY_EXACT = 0, /* pattern is a name */
	POLICY_PREFIX,    /* pattern "p.*": stored as "p." */
	POLICY_ANY,       /* "*" */
	POLICY_MONITOR    /* "monitor": may tap traffic; covers no name */
};

struct policy_rule {
	enum policy_match match;
	uint16_t plen;
	char pattern[IPCHUB_MAX_NAME + 2]; /* NUL-terminated */
	bool has_key, has_uid;
	uint8_t pk[AUTH_PK_LEN];
	uint32_t uid;
	unsigned line;                     /* in the file, for messages */
};

struct policy {
	struct policy_rule *rules; /* owned */
	size_t n;
};

/* Load and validate the policy at path. Returns 0 with a new policy in
 * *out (caller frees with policy_free), or a negative errno with a
 * one-line message in err ("PATH:LINE: why" for syntax errors); *out is
 * untouched on failure. */
int policy_load(const char *path, struct policy **out, char *err, size_t cap);

/* Parse policy text (the file's contents; name is used in messages).
 * Same contract as policy_load. Exposed for the unit tests. */
int policy_parse(const char *text, size_t len, const char *name,
		 struct policy **out, char *err, size_t cap);

void policy_free(struct policy *p); /* NULL accepted */

/* Whether any rule's pattern matches name. p may be NULL (no policy:
 * nothing is covered). */
bool policy_covers(const struct policy *p, const char *name, size_t len);

/* Whether a connection that proved pk (NULL: no key) and runs as uid
 * (uid_known false: unknown) may own name: true for names no rule
 * covers, else true iff one matching rule is satisfied. */
bool policy_allows(const struct policy *p, const char *name, size_t len,
		   const uint8_t *pk, uint32_t uid, bool uid_known);

/* Whether a connection that proved pk (NULL: no key) and runs as uid
 * satisfies a `monitor` rule. p may be NULL (false). */
bool policy_may_monitor(const struct policy *p, const uint8_t *pk,
			uint32_t uid);

/* Whether pk appears in any rule. Scans every rule and compares with
 * sodium_memcmp, so its time does not depend on which rule matches. */
bool policy_knows_key(const struct policy *p, const uint8_t pk[AUTH_PK_LEN]);

#endif
