/*
 * htab.h - open-addressing hash index shared by the broker's tables
 * (names, connections by id, pending requests).
 *
 * Model: the table stores (hash, item pointer) pairs, not keys: the caller
 * hashes its key with htab_hash() and compares candidates itself while
 * probing (htab_probe_first/next return only items whose stored hash is
 * equal). Items are borrowed: the table never allocates, frees or reads
 * them. Linear probing, capacity a power of two, load kept at or below 1/2;
 * removal uses backward shifting, so there are no tombstones and lookups
 * stay short after churn.
 *
 * Hashing is SipHash-2-4 (libsodium crypto_shorthash) with a key drawn
 * from randombytes_buf() per table, so a client that picks names or
 * request ids cannot precompute collisions (hash flooding). sodium_init()
 * must have been called first.
 *
 * Errors: htab_init/htab_insert return 0 or -ENOMEM (table unchanged).
 */
#ifndef IPCHUB_BROKER_HTAB_H
#define IPCHUB_BROKER_HTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

struct htab_slot {
	uint64_t hash;
	void *item; /* NULL = empty slot */
};

struct htab {
	struct htab_slot *slot; /* owned */
	size_t mask;            /* capacity - 1 */
	size_t len;             /* items stored */
	unsigned char key[crypto_shorthash_KEYBYTES];
};

/* Probe cursor; opaque to callers. */
struct htab_probe {
	size_t i;
};

/* Initialize an empty table with room for about hint items before it
 * first grows. Returns 0 or -ENOMEM. */
int htab_init(struct htab *t, size_t hint);
/* Free the slot array (not the items). Accepts a zeroed table. */
void htab_fini(struct htab *t);

uint64_t htab_hash(const struct htab *t, const void *data, size_t len);

static inline size_t htab_len(const struct htab *t) { return t->len; }

/* Candidates with the given hash, in probe order; NULL when exhausted. */
void *htab_probe_first(const struct htab *t, uint64_t hash,
		       struct htab_probe *p);
void *htab_probe_next(const struct htab *t, uint64_t hash,
		      struct htab_probe *p);

/* Add item under hash (duplicates are the caller's business). */
int htab_insert(struct htab *t, uint64_t hash, void *item);

/* Remove this item (pointer identity) stored under hash. Returns whether
 * it was found. */
bool htab_remove(struct htab *t, uint64_t hash, const void *item);

/* Iterate over every item: start with *pos = 0; returns NULL at the end.
 * The table must not be modified during the iteration. */
void *htab_next(const struct htab *t, size_t *pos);

#endif
