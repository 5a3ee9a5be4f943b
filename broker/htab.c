/*
 * htab.c - see htab.h. Invariant: every item sits in the first empty-free
 * run of slots starting at its home slot (hash & mask), so a probe may
 * stop at the first empty slot; removal shifts later members of the run
 * back to keep that true.
 */
#include "htab.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define HTAB_MIN_CAP 16u

static size_t cap_for(size_t n)
{
	size_t cap = HTAB_MIN_CAP;

	while (cap / 2 < n)
		cap *= 2;
	return cap;
}

int htab_init(struct htab *t, size_t hint)
{
	size_t cap = cap_for(hint);
	struct htab_slot *s = calloc(cap, sizeof(*s));

	if (!s)
		return -ENOMEM;
	t->slot = s;
	t->mask = cap - 1;
	t->len = 0;
	randombytes_buf(t->key, sizeof(t->key));
	return 0;
}

void htab_fini(struct htab *t)
{
	if (!t)
		return;
	free(t->slot);
	t->slot = NULL;
	t->mask = 0;
	t->len = 0;
}

uint64_t htab_hash(const struct htab *t, const void *data, size_t len)
{
	unsigned char out[crypto_shorthash_BYTES];
	uint64_t h;

	crypto_shorthash(out, data, len, t->key);
	memcpy(&h, out, sizeof(h));
	return h;
}

void *htab_probe_first(const struct htab *t, uint64_t hash,
		       struct htab_probe *p)
{
	p->i = (size_t)hash & t->mask;
	for (;;) {
		const struct htab_slot *s = &t->slot[p->i];

		if (!s->item)
			return NULL;
		if (s->hash == hash)
			return s->item;
		p->i = (p->i + 1) & t->mask;
	}
}

void *htab_probe_next(const struct htab *t, uint64_t hash,
		      struct htab_probe *p)
{
	p->i = (p->i + 1) & t->mask;
	for (;;) {
		const struct htab_slot *s = &t->slot[p->i];

		if (!s->item)
			return NULL;
		if (s->hash == hash)
			return s->item;
		p->i = (p->i + 1) & t->mask;
	}
}

static void place(struct htab_slot *slot, size_t mask, uint64_t hash,
		  void *item)
{
	size_t i = (size_t)hash & mask;

	while (slot[i].item)
		i = (i + 1) & mask;
	slot[i].hash = hash;
	slot[i].item = item;
}

static int grow(struct htab *t)
{
	size_t ncap = (t->mask + 1) * 2;
	struct htab_slot *ns = calloc(ncap, sizeof(*ns));

	if (!ns)
		return -ENOMEM;
	for (size_t i = 0; i <= t->mask; i++)
		if (t->slot[i].item)
			place(ns, ncap - 1, t->slot[i].hash, t->slot[i].item);
	free(t->slot);
	t->slot = ns;
	t->mask = ncap - 1;
	return 0;
}

int htab_insert(struct htab *t, uint64_t hash, void *item)
{
	if ((t->len + 1) > (t->mask + 1) / 2) {
		int r = grow(t);

		if (r)
			return r;
	}
	place(t->slot, t->mask, hash, item);
	t->len++;
	return 0;
}

bool htab_remove(struct htab *t, uint64_t hash, const void *item)
{
	size_t i = (size_t)hash & t->mask, j;

	for (;;) {
		if (!t->slot[i].item)
			return false;
		if (t->slot[i].item == item)
			break;
		i = (i + 1) & t->mask;
	}
	/* Backward-shift: move each later run member whose home slot is not
	 * in (i, j] into the hole, until the run ends. */
	j = i;
	for (;;) {
		size_t home;

		j = (j + 1) & t->mask;
		if (!t->slot[j].item)
			break;
		home = (size_t)t->slot[j].hash & t->mask;
		if (((j - home) & t->mask) >= ((j - i) & t->mask)) {
			t->slot[i] = t->slot[j];
			i = j;
		}
	}
	t->slot[i].item = NULL;
	t->slot[i].hash = 0;
	t->len--;
	return true;
}

void *htab_next(const struct htab *t, size_t *pos)
{
	while (*pos <= t->mask) {
		void *it = t->slot[*pos].item;

		(*pos)++;
		if (it)
			return it;
	}
	return NULL;
}
