/*
 * names.c - see names.h. The per-owner array is kept in registration
 * order (removal shifts the tail down) because "primary = oldest" depends
 * on it; with at most IPCHUB_MAX_NAMES_MAX entries the shift is cheap and
 * it only happens on UNREGISTER, never on the message path.
 */
#include "names.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "limits.h"
#include "name.h"
#include "wire.h"

int names_init(struct names *t)
{
	t->gen = 0;
	return htab_init(&t->tab, 256);
}

void names_fini(struct names *t)
{
	htab_fini(&t->tab);
}

static struct name_entry *find(const struct names *t, uint64_t hash,
			       const char *name, size_t len)
{
	struct htab_probe p;
	struct name_entry *e;

	for (e = htab_probe_first(&t->tab, hash, &p); e;
	     e = htab_probe_next(&t->tab, hash, &p))
		if (e->len == len && memcmp(e->name, name, len) == 0)
			return e;
	return NULL;
}

void *names_lookup(const struct names *t, const char *name, size_t len)
{
	struct name_entry *e;

	if (len == 0 || len > IPCHUB_MAX_NAME)
		return NULL;
	e = find(t, htab_hash(&t->tab, name, len), name, len);
	return e ? e->owner : NULL;
}

void *names_lookup_cached(const struct names *t, struct names_cache *c,
			  const char *name, size_t len)
{
	struct name_entry *e;

	if (names_cache_hit(t, c, name, len))
		return c->e->owner;
	if (len == 0 || len > IPCHUB_MAX_NAME)
		return NULL;
	e = find(t, htab_hash(&t->tab, name, len), name, len);
	c->e = e;
	c->gen = t->gen;
	return e ? e->owner : NULL;
}

int names_register(struct names *t, struct names_owned *o, void *owner,
		   const char *name, size_t len, uint32_t max)
{
	struct name_entry *e;
	uint64_t hash;

	if (name_check_addr(name, len) != WIRE_E_OK || name_is_reserved(name, len))
		return WIRE_E_BAD_NAME;
	hash = htab_hash(&t->tab, name, len);
	e = find(t, hash, name, len);
	if (e)
		return e->owner == owner ? WIRE_E_OK : WIRE_E_NAME_TAKEN;
	if (o->n >= max)
		return WIRE_E_LIMIT;
	if (o->n == o->cap) {
		uint32_t ncap = o->cap ? o->cap * 2 : 4;
		struct name_entry **nv = realloc(o->v, ncap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		o->v = nv;
		o->cap = ncap;
	}
	e = malloc(sizeof(*e) + len + 1);
	if (!e)
		return -ENOMEM;
	e->owner = owner;
	e->hash = hash;
	e->len = (uint16_t)len;
	memcpy(e->name, name, len);
	e->name[len] = '\0';
	if (htab_insert(&t->tab, hash, e) < 0) {
		free(e);
		return -ENOMEM;
	}
	o->v[o->n++] = e;
	return WIRE_E_OK;
}

int names_unregister(struct names *t, struct names_owned *o, void *owner,
		     const char *name, size_t len)
{
	struct name_entry *e;

	if (name_check_addr(name, len) != WIRE_E_OK)
		return WIRE_E_BAD_NAME;
	e = find(t, htab_hash(&t->tab, name, len), name, len);
	if (!e || e->owner != owner)
		return WIRE_E_NOT_OWNER;
	for (uint32_t i = 0; i < o->n; i++) {
		if (o->v[i] == e) {
			memmove(&o->v[i], &o->v[i + 1],
				(o->n - i - 1) * sizeof(o->v[0]));
			o->n--;
			break;
		}
	}
	htab_remove(&t->tab, e->hash, e);
	free(e);
	t->gen++;
	return WIRE_E_OK;
}

void names_release_all(struct names *t, struct names_owned *o)
{
	if (o->n)
		t->gen++;
	for (uint32_t i = 0; i < o->n; i++) {
		htab_remove(&t->tab, o->v[i]->hash, o->v[i]);
		free(o->v[i]);
	}
	free(o->v);
	o->v = NULL;
	o->n = o->cap = 0;
}

const char *names_primary(const struct names_owned *o, size_t *len)
{
	if (!o->n) {
		*len = 0;
		return NULL;
	}
	*len = o->v[0]->len;
	return o->v[0]->name;
}

const struct name_entry *names_next(const struct names *t, size_t *pos)
{
	return htab_next(&t->tab, pos);
}
