/*
 * pending.c - see pending.h. The free list holds at most PENDING_FREE_MAX
 * entries so that a burst of requests does not pin memory forever.
 */
#include "pending.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Recycled entries kept for reuse: enough for a busy client's window. */
#define PENDING_FREE_MAX 4096u

struct pending_key {
	uint64_t conn;
	uint64_t id;
};

static uint64_t key_hash(const struct pending_table *pt, uint64_t conn,
			 uint64_t id)
{
	struct pending_key k = {conn, id};

	return htab_hash(&pt->tab, &k, sizeof(k));
}

void pending_list_init(struct pending_list *l)
{
	TAILQ_INIT(&l->head);
	l->n = 0;
}

int pending_init(struct pending_table *pt, struct event_base *base,
		 pending_expire_fn on_expire, void *arg)
{
	int r = htab_init(&pt->tab, 1024);

	if (r)
		return r;
	pt->base = base;
	pt->on_expire = on_expire;
	pt->arg = arg;
	TAILQ_INIT(&pt->free);
	pt->nfree = 0;
	return 0;
}

static void entry_free(struct pending *p)
{
	if (p->timer)
		event_free(p->timer);
	free(p);
}

void pending_fini(struct pending_table *pt)
{
	struct pending *p;
	size_t pos = 0;

	if (!pt->tab.slot)
		return;
	/* Collect first: removal reshuffles the index. */
	while ((p = htab_next(&pt->tab, &pos))) {
		pending_remove(pt, p);
		pos = 0;
	}
	while ((p = TAILQ_FIRST(&pt->free))) {
		TAILQ_REMOVE(&pt->free, p, by_req);
		entry_free(p);
	}
	pt->nfree = 0;
	htab_fini(&pt->tab);
}

struct pending *pending_find(const struct pending_table *pt, uint64_t req_conn,
			     uint64_t id)
{
	uint64_t h = key_hash(pt, req_conn, id);
	struct htab_probe pr;
	struct pending *p;

	for (p = htab_probe_first(&pt->tab, h, &pr); p;
	     p = htab_probe_next(&pt->tab, h, &pr))
		if (p->req_conn == req_conn && p->id == id)
			return p;
	return NULL;
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pending *p = arg;
	struct pending_table *pt = p->tab;

	(void)fd;
	(void)what;
	if (pt->on_expire)
		pt->on_expire(pt->arg, p);
	pending_remove(pt, p);
}

int pending_add(struct pending_table *pt, uint64_t req_conn, uint64_t id,
		void *requester, struct pending_list *req_list,
		void *responder, struct pending_list *resp_list,
		uint32_t timeout_ms, struct pending **out)
{
	struct pending *p = TAILQ_FIRST(&pt->free);
	bool fresh = false;

	if (p) {
		TAILQ_REMOVE(&pt->free, p, by_req);
		pt->nfree--;
	} else {
		p = calloc(1, sizeof(*p));
		if (!p)
			return -ENOMEM;
		p->tab = pt;
		fresh = true;
	}
	if (timeout_ms && !p->timer) {
		p->timer = evtimer_new(pt->base, timer_cb, p);
		if (!p->timer)
			goto fail;
	}
	p->req_conn = req_conn;
	p->id = id;
	p->hash = key_hash(pt, req_conn, id);
	if (htab_insert(&pt->tab, p->hash, p) < 0)
		goto fail;
	if (timeout_ms) {
		struct timeval tv = {
			.tv_sec = timeout_ms / 1000,
			.tv_usec = (suseconds_t)(timeout_ms % 1000) * 1000,
		};

		if (evtimer_add(p->timer, &tv) < 0) {
			htab_remove(&pt->tab, p->hash, p);
			goto fail;
		}
	}
	p->requester = requester;
	p->responder = responder;
	p->req_list = req_list;
	p->resp_list = resp_list;
	TAILQ_INSERT_TAIL(&req_list->head, p, by_req);
	req_list->n++;
	TAILQ_INSERT_TAIL(&resp_list->head, p, by_resp);
	resp_list->n++;
	if (out)
		*out = p;
	return 0;

fail:
	if (fresh) {
		entry_free(p);
	} else {
		TAILQ_INSERT_HEAD(&pt->free, p, by_req);
		pt->nfree++;
	}
	return -ENOMEM;
}

void pending_remove(struct pending_table *pt, struct pending *p)
{
	htab_remove(&pt->tab, p->hash, p);
	TAILQ_REMOVE(&p->req_list->head, p, by_req);
	p->req_list->n--;
	TAILQ_REMOVE(&p->resp_list->head, p, by_resp);
	p->resp_list->n--;
	if (p->timer)
		evtimer_del(p->timer);
	p->requester = p->responder = NULL;
	p->req_list = p->resp_list = NULL;
	if (pt->nfree < PENDING_FREE_MAX) {
		TAILQ_INSERT_HEAD(&pt->free, p, by_req);
		pt->nfree++;
	} else {
		entry_free(p);
	}
}
