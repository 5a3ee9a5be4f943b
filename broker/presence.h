/*
 * presence.h - watching names (PROTOCOL.md section 10.3): WATCH, UNWATCH
 * and the PRESENCE events.
 *
 * Model: the broker keeps, per watched name, a struct pr_name (found
 * through an htab keyed by the name's hash) listing its watches; each
 * watch (struct pr_watch) also sits on its connection's list. WATCH is
 * answered at once with the name's current state (OWNED with the owner's
 * connection id, or UNOWNED); every later change is sent as it happens,
 * from the same single thread that changes the name table, so no change
 * can fall between the answer and the stream. The name table calls in
 * here (presence_notify) on every register and release; the auth work
 * reports revocations through the same function with
 * WIRE_REASON_REVOKED.
 *
 * Presence events are small and rare, so they are not queued or dropped
 * like publications: they go straight into the watcher's output. A
 * watcher that lets its output grow past IPCHUB_WATCH_HWM_MULT x
 * queue_hwm without reading is disconnected (BYE QUEUE_FULL), which keeps
 * memory bounded without losing events silently.
 *
 * Lifetime: a watch dies at UNWATCH or when its connection detaches;
 * during a notification (busy) dying watches are only marked and are
 * freed when it ends.
 */
#ifndef IPCHUB_BROKER_PRESENCE_H
#define IPCHUB_BROKER_PRESENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "conn.h"
#include "htab.h"

struct pr_name;

struct pr_watch {
	struct conn *c;                /* NULL once dead */
	uint64_t id;                   /* the WATCH's id */
	struct pr_name *pn;            /* borrowed */
	bool doomed;                   /* over the output limit */
	TAILQ_ENTRY(pr_watch) by_name; /* pn->watches */
	TAILQ_ENTRY(pr_watch) by_conn; /* conn->watches, or the graveyard */
};

struct pr_name {
	uint64_t hash;
	TAILQ_HEAD(, pr_watch) watches;
	uint32_t n;                    /* live watches */
	uint16_t len;
	char name[];                   /* NUL-terminated */
};

struct presence {
	struct htab names;             /* name -> struct pr_name, owned */
	unsigned busy;
	TAILQ_HEAD(, pr_watch) graveyard;
	uint64_t nwatches;
};

int presence_init(struct presence *p);
void presence_fini(struct presence *p);

void presence_watch(struct conn *c, struct conn_frame *f);
void presence_unwatch(struct conn *c, struct conn_frame *f);

/* The name changed hands: event WIRE_PRESENCE_REGISTERED (owner = the
 * new owner, reason 0) or WIRE_PRESENCE_RELEASED (owner = the old one,
 * reason WIRE_REASON_*). Tells every watcher of the name. b is the
 * broker (struct broker *). */
void presence_notify(struct broker *b, const char *name, size_t len,
		     const struct conn *owner, int event, int reason);

/* c is detaching: report each of its names RELEASED (DISCONNECT) - call
 * before the names are released - and drop its watches. */
void presence_conn_gone(struct conn *c);

/* Whether c has a live watch with this id. */
bool presence_find(const struct conn *c, uint64_t id);

#endif
