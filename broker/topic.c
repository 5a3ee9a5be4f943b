/*
 * topic.c - see topic.h. Invariants: a non-root node is reachable from
 * its parent either as parent->star (its segment is "*") or through the
 * edges table under hash(parent pointer, segment); nchildren counts both
 * kinds; a non-root node with no entries and no children is freed at
 * once (topic_remove prunes bottom-up). ">" never gets a node: it is an
 * entry on the rest list of the node for the prefix before it.
 */
#include "topic.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "limits.h"
#include "name.h"
#include "wire.h"

static bool seg_char_ok(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '-';
}

int topic_check(const char *s, size_t len)
{
	return name_check(s, len);
}

int topic_pattern_check(const char *s, size_t len)
{
	size_t i = 0;

	if (len == 0 || len > IPCHUB_MAX_NAME)
		return WIRE_E_BAD_NAME;
	while (i <= len) {
		size_t j = i;

		while (j < len && s[j] != '.')
			j++;
		if (j == i)
			return WIRE_E_BAD_NAME; /* empty segment */
		if (j - i == 1 && (s[i] == '*' || s[i] == '>')) {
			if (s[i] == '>' && j != len)
				return WIRE_E_BAD_NAME; /* '>' only last */
		} else {
			for (size_t k = i; k < j; k++)
				if (!seg_char_ok((unsigned char)s[k]))
					return WIRE_E_BAD_NAME;
		}
		i = j + 1;
	}
	return WIRE_E_OK;
}

/* Length of the segment starting at s[i] (up to '.' or end). */
static size_t seg_end(const char *s, size_t len, size_t i)
{
	while (i < len && s[i] != '.')
		i++;
	return i;
}

bool topic_pattern_match(const char *pat, size_t plen, const char *topic,
			 size_t tlen)
{
	size_t p = 0, t = 0;

	/* p and t index the start of the current segment; an index past the
	 * end means that side is exhausted (segments are never empty). */
	for (;;) {
		size_t pe = seg_end(pat, plen, p), te;

		if (pe - p == 1 && pat[p] == '>')
			return t < tlen; /* one or more segments remain */
		if (t >= tlen)
			return false;
		te = seg_end(topic, tlen, t);
		if (!(pe - p == 1 && pat[p] == '*') &&
		    (pe - p != te - t || memcmp(pat + p, topic + t, pe - p) != 0))
			return false;
		p = pe + 1;
		t = te + 1;
		if (p > plen)
			return t > tlen;
	}
}

/* Hash of the edge (parent, segment). */
static uint64_t edge_hash(const struct topic_tree *t,
			  const struct topic_node *parent, const char *seg,
			  size_t len)
{
	char key[sizeof(parent) + IPCHUB_MAX_NAME];

	memcpy(key, &parent, sizeof(parent));
	memcpy(key + sizeof(parent), seg, len);
	return htab_hash(&t->edges, key, sizeof(parent) + len);
}

static struct topic_node *child(const struct topic_tree *t,
				const struct topic_node *n, const char *seg,
				size_t len)
{
	uint64_t h;
	struct htab_probe p;
	struct topic_node *c;

	if (len == 1 && seg[0] == '*')
		return n->star;
	if (n->nchildren == 0 || (n->nchildren == 1 && n->star))
		return NULL;
	h = edge_hash(t, n, seg, len);
	for (c = htab_probe_first(&t->edges, h, &p); c;
	     c = htab_probe_next(&t->edges, h, &p))
		if (c->parent == n && c->seg_len == len &&
		    memcmp(c->seg, seg, len) == 0)
			return c;
	return NULL;
}

static struct topic_node *node_new(const char *seg, size_t len)
{
	struct topic_node *n = calloc(1, sizeof(*n) + len);

	if (!n)
		return NULL;
	TAILQ_INIT(&n->exact);
	TAILQ_INIT(&n->rest);
	n->seg_len = (uint16_t)len;
	memcpy(n->seg, seg, len);
	return n;
}

int topic_init(struct topic_tree *t)
{
	memset(t, 0, sizeof(*t));
	TAILQ_INIT(&t->all);
	if (htab_init(&t->edges, 64) < 0)
		return -ENOMEM;
	t->root = node_new("", 0);
	if (!t->root) {
		htab_fini(&t->edges);
		return -ENOMEM;
	}
	return 0;
}

void topic_fini(struct topic_tree *t)
{
	struct topic_node *n;

	if (!t->root)
		return;
	while ((n = TAILQ_FIRST(&t->all))) {
		TAILQ_REMOVE(&t->all, n, all);
		free(n);
	}
	free(t->root);
	t->root = NULL;
	htab_fini(&t->edges);
}

int topic_add(struct topic_tree *t, struct topic_entry *e, const char *pat,
	      size_t len)
{
	struct topic_node *n = t->root, *made[IPCHUB_MAX_NAME];
	size_t nmade = 0, i = 0;
	bool rest = false;

	while (i <= len) {
		size_t j = seg_end(pat, len, i);
		struct topic_node *c;

		if (j - i == 1 && pat[i] == '>') {
			rest = true;
			break;
		}
		c = child(t, n, pat + i, j - i);
		if (!c) {
			c = node_new(pat + i, j - i);
			if (!c)
				goto nomem;
			c->parent = n;
			if (j - i == 1 && pat[i] == '*') {
				n->star = c;
			} else {
				c->hash = edge_hash(t, n, pat + i, j - i);
				if (htab_insert(&t->edges, c->hash, c) < 0) {
					free(c);
					goto nomem;
				}
			}
			n->nchildren++;
			t->nnodes++;
			TAILQ_INSERT_TAIL(&t->all, c, all);
			made[nmade++] = c;
		}
		n = c;
		i = j + 1;
	}
	e->node = n;
	e->rest = rest;
	TAILQ_INSERT_TAIL(rest ? &n->rest : &n->exact, e, link);
	t->nentries++;
	return 0;
nomem:
	/* Undo the nodes made here, deepest first; they hold nothing. */
	while (nmade > 0) {
		struct topic_node *c = made[--nmade];

		if (c->parent->star == c)
			c->parent->star = NULL;
		else
			htab_remove(&t->edges, c->hash, c);
		c->parent->nchildren--;
		t->nnodes--;
		TAILQ_REMOVE(&t->all, c, all);
		free(c);
	}
	return -ENOMEM;
}

void topic_remove(struct topic_tree *t, struct topic_entry *e)
{
	struct topic_node *n = e->node;

	TAILQ_REMOVE(e->rest ? &n->rest : &n->exact, e, link);
	e->node = NULL;
	t->nentries--;
	while (n != t->root && n->nchildren == 0 && TAILQ_EMPTY(&n->exact) &&
	       TAILQ_EMPTY(&n->rest)) {
		struct topic_node *p = n->parent;

		if (p->star == n)
			p->star = NULL;
		else
			htab_remove(&t->edges, n->hash, n);
		p->nchildren--;
		t->nnodes--;
		TAILQ_REMOVE(&t->all, n, all);
		free(n);
		n = p;
	}
}

static size_t match_at(const struct topic_tree *t, const struct topic_node *n,
		       const char *topic, size_t len, size_t i,
		       topic_match_fn fn, void *arg)
{
	struct topic_entry *e, *next;
	size_t calls = 0, j;
	const struct topic_node *c;

	/* i <= len: segments remain; ">" here matches all of them. */
	for (e = TAILQ_FIRST(&n->rest); e; e = next) {
		next = TAILQ_NEXT(e, link);
		fn(e, arg);
		calls++;
	}
	j = seg_end(topic, len, i);
	c = child(t, n, topic + i, j - i);
	if (c) {
		if (j == len) {
			for (e = TAILQ_FIRST(&c->exact); e; e = next) {
				next = TAILQ_NEXT(e, link);
				fn(e, arg);
				calls++;
			}
		} else {
			calls += match_at(t, c, topic, len, j + 1, fn, arg);
		}
	}
	if (n->star) {
		c = n->star;
		if (j == len) {
			for (e = TAILQ_FIRST(&c->exact); e; e = next) {
				next = TAILQ_NEXT(e, link);
				fn(e, arg);
				calls++;
			}
		} else {
			calls += match_at(t, c, topic, len, j + 1, fn, arg);
		}
	}
	return calls;
}

size_t topic_match(const struct topic_tree *t, const char *topic, size_t len,
		   topic_match_fn fn, void *arg)
{
	if (len == 0)
		return 0;
	return match_at(t, t->root, topic, len, 0, fn, arg);
}
