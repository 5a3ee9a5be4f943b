/*
 * pubsub.h - publish/subscribe (PROTOCOL.md section 10): SUBSCRIBE,
 * UNSUBSCRIBE, PUBLISH, and the slow-subscriber policies.
 *
 * Model: a subscription (struct ps_sub) belongs to one connection (linked
 * on conn->subs) and to the broker's topic trie (topic.h). A PUBLISH is
 * matched against the trie into a scratch array, then fanned out. Its
 * body is copied once out of the publisher's input into a refcounted
 * struct ps_msg; deliveries reference it (evbuffer_add_reference for
 * large bodies, a copy for small ones), so 100 subscribers do not mean
 * 100 copies of a large body.
 *
 * Delivery to a subscription goes straight into its connection's output
 * while that output is at most queue_hwm bytes and the subscription has
 * nothing queued; otherwise the publication is appended to the
 * subscription's own queue (at most sub_queue publications (--sub-queue) and
 * queue_hwm bytes), which pubsub_drain() moves into the output as the
 * socket takes bytes. When the queue is full the subscription's policy
 * decides: DROP_OLDEST drops the head of the queue, DROP_NEWEST the
 * arriving publication, DISCONNECT closes the subscriber (BYE
 * QUEUE_FULL), and BLOCK never queues: before any delivery, a publisher
 * whose publication matches a BLOCK subscription whose connection is over
 * the mark is parked on that connection (conn_park), exactly like a
 * directed SEND. Drops are counted per subscription and per connection,
 * and recorded where they happened: each queued item carries the number
 * of publications lost just before it (gap_before), the subscription the
 * number lost after its last item (gap_tail); a GAP {sub, count} frame is
 * emitted at that point of the stream. So the publisher is slowed only by
 * BLOCK subscribers, and loss is never silent.
 *
 * Batched publications (PROTOCOL.md 10.2.1): a PUBLISH with flags BATCH
 * is one ps_msg whose body is the whole array (batch = its element count;
 * element i has id id + i). It is matched, checked against BLOCK
 * subscribers and copied once. A subscription that may take it directly
 * gets it whole, as one frame with flags BATCH, when its connection
 * announced PUB_BATCH, else one PUBLISH per element, in order. A
 * subscription that is behind queues every element as its own item
 * (ps_item names the element by index and byte span), so the queue
 * limits, the drop policies and the GAP counts work on publications
 * exactly as without batches.
 *
 * Lifetime: a subscription dies at UNSUBSCRIBE or when its connection
 * detaches. While a fan-out is running (ps->busy) a dying subscription is
 * unlinked from the trie and its connection but freed only when the
 * fan-out ends (it stays valid in the scratch array, marked dead).
 */
#ifndef IPCHUB_BROKER_PUBSUB_H
#define IPCHUB_BROKER_PUBSUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "conn.h"
#include "limits.h"
#include "topic.h"

/* One publication, shared by everything that still refers to it. */
struct ps_msg {
	uint32_t refs;
	uint64_t id, from_id;
	uint32_t uid;
	uint16_t topic_len, from_len;
	char topic[IPCHUB_MAX_NAME + 1];
	char from[IPCHUB_MAX_NAME + 1];
	uint32_t batch;      /* elements of a batched PUBLISH; 0 = single */
	size_t len;
	uint8_t body[];      /* the body; for a batch, the whole array */
};

/* One queued publication: all of a single ps_msg, or element idx of a
 * batch, whose bytes are body[off .. off + len). */
struct ps_item {
	TAILQ_ENTRY(ps_item) link;
	struct ps_msg *m;    /* one reference */
	uint32_t idx;        /* element index (0 for a single publication) */
	size_t off, len;     /* its bytes in m->body */
	uint64_t gap_before; /* publications lost just before this one */
};

struct ps_sub {
	struct topic_entry te;      /* first: the trie hands us &te */
	struct conn *c;             /* owner; NULL once dead */
	uint64_t id;                /* the SUBSCRIBE's id */
	uint8_t policy;             /* enum wire_policy */
	bool doomed;                /* DISCONNECT policy triggered */
	TAILQ_ENTRY(ps_sub) link;   /* conn->subs, or the graveyard */
	TAILQ_HEAD(, ps_item) q;
	uint32_t qn;                /* publications queued */
	uint64_t qbytes;            /* their body bytes */
	uint64_t gap_tail;          /* lost after the last queued item */
	uint64_t delivered, drops;
	uint16_t pat_len;
	char pat[IPCHUB_MAX_NAME + 1];
};

TAILQ_HEAD(ps_sub_tq, ps_sub);

struct pubsub {
	struct topic_tree tree;
	struct ps_sub **match;      /* owned scratch for one fan-out */
	size_t nmatch, match_cap;
	unsigned busy;              /* fan-outs in progress */
	struct ps_sub_tq graveyard; /* died during a fan-out */
	uint64_t nsubs;
};

int pubsub_init(struct pubsub *ps);
void pubsub_fini(struct pubsub *ps);

/* Frame handlers (dispatch.c). Each answers the sender: OK / ERROR for
 * (UN)SUBSCRIBE; PUBLISH is answered only when refused. */
void pubsub_subscribe(struct conn *c, struct conn_frame *f);
void pubsub_unsubscribe(struct conn *c, struct conn_frame *f);
void pubsub_publish(struct conn *c, struct conn_frame *f);

/* c is detaching: drop its subscriptions (and what is queued for them). */
void pubsub_conn_gone(struct conn *c);

/* c's output has room: move queued publications (and gap notices) into
 * it until it is over the high-water mark again. */
void pubsub_drain(struct conn *c);

/* Bytes queued in c's subscriptions (not yet in its output). */
uint64_t pubsub_queued_bytes(const struct conn *c);

/* Whether id names a live subscription, watch or monitor tap of c. */
bool pubsub_id_in_use(const struct conn *c, uint64_t id);

/* "drop-oldest", ...; "?" for values outside the enum. */
const char *pubsub_policy_name(unsigned policy);

#endif
