/*
 * names.h - the name table: which connection owns which name.
 *
 * Model: one struct names per broker maps a name to its owner in O(1)
 * (an htab keyed by the name's SipHash, see htab.h; no external hash
 * library). Each connection embeds a struct names_owned listing the
 * entries it holds in registration order, so entry 0 is its primary name
 * (the oldest it still holds). A name_entry is allocated at register and
 * freed at unregister or release; it is referenced by exactly one table
 * slot and one names_owned array, and both references go away together.
 * Owners are opaque pointers (struct conn * in the broker), borrowed.
 *
 * Result codes are protocol codes (enum wire_code) for the caller to send
 * back, or -ENOMEM; on failure nothing changes.
 */
#ifndef IPCHUB_BROKER_NAMES_H
#define IPCHUB_BROKER_NAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "htab.h"

struct name_entry {
	void *owner;     /* borrowed */
	uint64_t hash;
	uint16_t len;
	char name[];     /* NUL-terminated, len bytes */
};

struct names {
	struct htab tab; /* name -> struct name_entry */
	uint64_t gen;    /* bumped whenever an entry is removed */
};

/* A one-entry lookup cache (e.g. a sender's last destination): valid
 * while the table's gen is unchanged, because only removals free entries
 * or change owners. Zero-initialised = empty. */
struct names_cache {
	const struct name_entry *e; /* borrowed; may be stale if gen moved */
	uint64_t gen;
};

struct names_owned {
	struct name_entry **v; /* owned array; entries owned by the table */
	uint32_t n, cap;
};

int names_init(struct names *t);
/* Frees the table; every names_owned must have been released first. */
void names_fini(struct names *t);

/* Claim name for owner. Returns WIRE_E_OK (also when owner already holds
 * it), WIRE_E_BAD_NAME (grammar or reserved), WIRE_E_NAME_TAKEN,
 * WIRE_E_LIMIT (owner already holds max names) or -ENOMEM. */
int names_register(struct names *t, struct names_owned *o, void *owner,
		   const char *name, size_t len, uint32_t max);

/* Release name. Returns WIRE_E_OK, WIRE_E_BAD_NAME or WIRE_E_NOT_OWNER. */
int names_unregister(struct names *t, struct names_owned *o, void *owner,
		     const char *name, size_t len);

/* Release every name of o and free its array (o is reset to empty). */
void names_release_all(struct names *t, struct names_owned *o);

/* Owner of name, or NULL. The name need not be valid (then NULL). */
void *names_lookup(const struct names *t, const char *name, size_t len);

/* Like names_lookup(), answered from *c when it holds this name and the
 * table has not lost an entry since; refills *c otherwise. A hit also
 * means the name is a registered one, so it passed the name grammar. */
static inline bool names_cache_hit(const struct names *t,
				   const struct names_cache *c,
				   const char *name, size_t len)
{
	return c->e && c->gen == t->gen && c->e->len == len &&
	       memcmp(c->e->name, name, len) == 0;
}
void *names_lookup_cached(const struct names *t, struct names_cache *c,
			  const char *name, size_t len);

/* Primary (oldest) name of o, or NULL with *len = 0. */
const char *names_primary(const struct names_owned *o, size_t *len);

static inline size_t names_count(const struct names *t)
{
	return htab_len(&t->tab);
}

/* Iterate over all entries (unordered); *pos starts at 0. */
const struct name_entry *names_next(const struct names *t, size_t *pos);

#endif
