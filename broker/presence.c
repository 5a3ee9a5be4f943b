/*
 * presence.c - see presence.h. Invariants: a pr_name exists exactly while
 * it has at least one watch linked on it (live or, during a
 * notification, dead); a dead watch has c == NULL and is on the
 * graveyard, still linked on its pr_name until the sweep.
 */
#include "presence.h"

#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "log.h"
#include "name.h"

int presence_init(struct presence *p)
{
	memset(p, 0, sizeof(*p));
	TAILQ_INIT(&p->graveyard);
	return htab_init(&p->names, 64);
}

void presence_fini(struct presence *p)
{
	size_t pos = 0;
	struct pr_name *pn;

	if (!p->names.slot)
		return;
	/* Every watch was freed with its connection; names may remain only
	 * if the broker is torn down without detaching (never). */
	while ((pn = htab_next(&p->names, &pos)))
		free(pn);
	htab_fini(&p->names);
}

static struct pr_name *pn_find(const struct presence *p, const char *name,
			       size_t len, uint64_t hash)
{
	struct htab_probe pr;
	struct pr_name *pn;

	for (pn = htab_probe_first(&p->names, hash, &pr); pn;
	     pn = htab_probe_next(&p->names, hash, &pr))
		if (pn->len == len && memcmp(pn->name, name, len) == 0)
			return pn;
	return NULL;
}

static void send_presence(struct conn *c, uint64_t id, const char *name,
			  size_t len, int event, uint64_t owner, int reason)
{
	struct frame_hdr h;

	frame_init(&h, WIRE_PRESENCE);
	h.id = id;
	h.event = (uint32_t)event;
	h.has |= FH(WK_ID) | FH(WK_EVENT);
	frame_set_str(&h, WK_NAME, name, len);
	if (owner) {
		h.conn = owner;
		h.has |= FH(WK_CONN);
	}
	if (reason) {
		h.reason = (uint32_t)reason;
		h.has |= FH(WK_REASON);
	}
	conn_send_hdr(c, &h);
}

static void sweep(struct presence *p)
{
	struct pr_watch *w;

	if (p->busy)
		return;
	while ((w = TAILQ_FIRST(&p->graveyard))) {
		struct pr_name *pn = w->pn;

		TAILQ_REMOVE(&p->graveyard, w, by_conn);
		TAILQ_REMOVE(&pn->watches, w, by_name);
		if (TAILQ_EMPTY(&pn->watches)) {
			htab_remove(&p->names, pn->hash, pn);
			free(pn);
		}
		free(w);
	}
}

static void watch_remove(struct presence *p, struct pr_watch *w)
{
	struct conn *c = w->c;

	TAILQ_REMOVE(&c->watches, w, by_conn);
	c->nsubs--;
	p->nwatches--;
	w->pn->n--;
	w->c = NULL;
	TAILQ_INSERT_TAIL(&p->graveyard, w, by_conn);
	sweep(p);
}

static struct pr_watch *find_watch(const struct conn *c, uint64_t id)
{
	struct pr_watch *w;

	TAILQ_FOREACH(w, &c->watches, by_conn)
		if (w->id == id)
			return w;
	return NULL;
}

bool presence_find(const struct conn *c, uint64_t id)
{
	return find_watch(c, id) != NULL;
}

void presence_watch(struct conn *c, struct conn_frame *f)
{
	struct broker *b = c->b;
	struct presence *p = &b->pr;
	const struct frame_hdr *h = &f->h;
	struct pr_name *pn;
	struct pr_watch *w;
	struct conn *owner;
	uint64_t hash;

	if (pubsub_id_in_use(c, h->id)) {
		conn_fail(c, WIRE_E_PROTOCOL, WIRE_WATCH, h->id,
			  "id %llu already names a live subscription, watch or tap",
			  (unsigned long long)h->id);
		return;
	}
	if (name_check_addr(h->name, h->name_len) != WIRE_E_OK ||
	    name_is_reserved(h->name, h->name_len)) {
		conn_send_error(c, h->id, WIRE_E_BAD_NAME, WIRE_WATCH, NULL, 0,
				h->name, h->name_len,
				"malformed or reserved name");
		return;
	}
	if (c->nsubs >= c->b->conf.max_subs) {
		conn_send_error(c, h->id, WIRE_E_LIMIT, WIRE_WATCH, NULL, 0,
				h->name, h->name_len,
				"too many subscriptions, watches and taps");
		return;
	}
	hash = htab_hash(&p->names, h->name, h->name_len);
	pn = pn_find(p, h->name, h->name_len, hash);
	w = calloc(1, sizeof(*w));
	if (!w)
		goto nomem;
	if (!pn) {
		pn = calloc(1, sizeof(*pn) + h->name_len + 1);
		if (!pn)
			goto nomem;
		pn->hash = hash;
		pn->len = h->name_len;
		memcpy(pn->name, h->name, h->name_len);
		TAILQ_INIT(&pn->watches);
		if (htab_insert(&p->names, hash, pn) < 0) {
			free(pn);
			goto nomem;
		}
	}
	w->c = c;
	w->id = h->id;
	w->pn = pn;
	TAILQ_INSERT_TAIL(&pn->watches, w, by_name);
	TAILQ_INSERT_TAIL(&c->watches, w, by_conn);
	pn->n++;
	c->nsubs++;
	p->nwatches++;
	owner = names_lookup(&b->names, h->name, h->name_len);
	send_presence(c, h->id, h->name, h->name_len,
		      owner ? WIRE_PRESENCE_OWNED : WIRE_PRESENCE_UNOWNED,
		      owner ? owner->id : 0, 0);
	return;
nomem:
	free(w);
	conn_send_error(c, h->id, WIRE_E_INTERNAL, WIRE_WATCH, NULL, 0, h->name,
			h->name_len, "out of memory");
}

void presence_unwatch(struct conn *c, struct conn_frame *f)
{
	const struct frame_hdr *h = &f->h;
	struct pr_watch *w = find_watch(c, h->sub);
	struct frame_hdr ok;

	if (!w) {
		conn_send_error(c, h->id, WIRE_E_NO_SUCH_REQUEST, WIRE_UNWATCH,
				NULL, 0, NULL, 0, "no watch with this id");
		return;
	}
	watch_remove(&c->b->pr, w);
	frame_init(&ok, WIRE_OK);
	ok.id = h->id;
	ok.has |= FH(WK_ID);
	conn_send_hdr(c, &ok);
}

void presence_notify(struct broker *b, const char *name, size_t len,
		     const struct conn *owner, int event, int reason)
{
	struct presence *p = &b->pr;
	uint64_t limit = (uint64_t)b->conf.queue_hwm * IPCHUB_WATCH_HWM_MULT;
	struct pr_name *pn;
	struct pr_watch *w;

	if (!p->nwatches)
		return;
	pn = pn_find(p, name, len, htab_hash(&p->names, name, len));
	if (!pn)
		return;
	p->busy++;
	TAILQ_FOREACH(w, &pn->watches, by_name) {
		if (!w->c || w->c->state != CONN_READY)
			continue;
		if (evbuffer_get_length(w->c->out) > limit) {
			w->doomed = true;
			continue;
		}
		send_presence(w->c, w->id, name, len, event, owner->id, reason);
	}
	TAILQ_FOREACH(w, &pn->watches, by_name) {
		if (w->doomed && w->c && w->c->state == CONN_READY) {
			struct conn *c = w->c;
			struct frame_hdr h;
			static const char msg[] =
				"a watched name changed while this connection "
				"was not reading (presence queue full)";
			char d[384];

			log_warn(&b->log, "%s closed: %s",
				 conn_desc(c, d, sizeof(d)), msg);
			frame_init(&h, WIRE_BYE);
			h.code = WIRE_E_QUEUE_FULL;
			h.has |= FH(WK_CODE);
			frame_set_str(&h, WK_MSG, msg, sizeof(msg) - 1);
			conn_send_hdr(c, &h);
			conn_close(c, "watcher not reading");
		}
	}
	p->busy--;
	sweep(p);
}

void presence_conn_gone(struct conn *c)
{
	struct presence *p = &c->b->pr;
	struct pr_watch *w;

	if (p->nwatches) {
		for (uint32_t i = 0; i < c->names.n; i++) {
			const struct name_entry *e = c->names.v[i];

			presence_notify(c->b, e->name, e->len, c,
					WIRE_PRESENCE_RELEASED,
					WIRE_REASON_DISCONNECT);
		}
	}
	while ((w = TAILQ_FIRST(&c->watches)))
		watch_remove(p, w);
}
