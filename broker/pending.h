/*
 * pending.h - requests forwarded by the broker and still awaiting their
 * answer.
 *
 * Model: one struct pending_table per broker indexes entries by
 * (requester connection id, request id) in O(1) (htab, SipHash with a
 * per-start random key: request ids are chosen by clients). Each entry is
 * also linked on two per-connection lists, embedded in the connections:
 * the requester's (requests it made; its length is what max_pending
 * limits) and the responder's (requests delivered to it), so either side
 * leaving finds its entries without a scan. An entry with a deadline owns
 * a libevent timer (the event base keeps timers in a min-heap: O(log n)
 * add and remove); when it fires the table calls on_expire() and then
 * removes the entry.
 *
 * Memory: entries (with their timer event) are recycled through a free
 * list of bounded size, so the request path does not allocate in steady
 * state. The table owns all entries; requester and responder pointers are
 * borrowed and must be detached (pending_remove) before they are freed.
 */
#ifndef IPCHUB_BROKER_PENDING_H
#define IPCHUB_BROKER_PENDING_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include <event2/event.h>

#include "htab.h"

struct pending;
struct pending_table;

TAILQ_HEAD(pending_tq, pending);

/* A per-connection list of entries, with its length. */
struct pending_list {
	struct pending_tq head;
	uint32_t n;
};

struct pending {
	uint64_t req_conn;          /* requester's connection id */
	uint64_t id;                /* the request's id */
	uint64_t hash;
	void *requester;            /* borrowed */
	void *responder;            /* borrowed */
	struct pending_list *req_list;
	struct pending_list *resp_list;
	TAILQ_ENTRY(pending) by_req;  /* also the free-list link */
	TAILQ_ENTRY(pending) by_resp;
	struct event *timer;        /* owned; created on first use, kept */
	struct pending_table *tab;  /* back pointer for the timer callback */
};

/* Called when an entry's deadline passes, before the table removes it.
 * The callback must not remove p itself. */
typedef void (*pending_expire_fn)(void *arg, struct pending *p);

struct pending_table {
	struct htab tab;
	struct event_base *base;     /* borrowed */
	pending_expire_fn on_expire;
	void *arg;
	struct pending_tq free;      /* recycled entries */
	uint32_t nfree;
};

void pending_list_init(struct pending_list *l);

static inline struct pending *pending_list_first(struct pending_list *l)
{
	return TAILQ_FIRST(&l->head);
}

/* Returns 0 or -ENOMEM. */
int pending_init(struct pending_table *pt, struct event_base *base,
		 pending_expire_fn on_expire, void *arg);
/* Removes (without callbacks) and frees every entry. */
void pending_fini(struct pending_table *pt);

/* The entry for (req_conn, id), or NULL. */
struct pending *pending_find(const struct pending_table *pt, uint64_t req_conn,
			     uint64_t id);

/* Add an entry; timeout_ms 0 = no deadline. The caller has checked that
 * (req_conn, id) is not present and that req_list is under its limit.
 * Returns 0 (and *out, if non-NULL) or -ENOMEM (nothing changed). */
int pending_add(struct pending_table *pt, uint64_t req_conn, uint64_t id,
		void *requester, struct pending_list *req_list,
		void *responder, struct pending_list *resp_list,
		uint32_t timeout_ms, struct pending **out);

/* Unlink p from the index and both lists, stop its timer, recycle it. */
void pending_remove(struct pending_table *pt, struct pending *p);

static inline size_t pending_count(const struct pending_table *pt)
{
	return htab_len(&pt->tab);
}

#endif
