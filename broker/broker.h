/*
 * broker.h - the broker: one event loop serving every connection.
 *
 * Model: struct broker owns the event_base, the listener, the connection
 * registry (id -> conn, O(1), for routing REPLY by to_id), the name table,
 * the pending-request table, the list of all live connections, the list
 * of dead ones awaiting the reaper, the flush list (connections with
 * output queued during the current batch of callbacks), the broker
 * instance id (16 random bytes as 32 hex digits) and the start time.
 * Everything runs on one thread; there is no global mutable state.
 *
 * Per loop iteration: I/O callbacks read and route frames, appending to
 * receivers' outputs and putting them on the flush list; the flush event
 * (activated when the list becomes non-empty, so it runs after the
 * callbacks already pending) writes each of them once, batching frames;
 * the reap event frees connections killed meanwhile.
 *
 * Shutdown (broker_stop): stop accepting and unlink the socket, send
 * BYE SHUTTING_DOWN to every connection, stop reading, flush for up to
 * CONF_SHUTDOWN_FLUSH_MS, then leave the loop; broker_free() releases the
 * rest.
 */
#ifndef IPCHUB_BROKER_BROKER_H
#define IPCHUB_BROKER_BROKER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/uio.h>
#include <time.h>

#include <event2/event.h>

#include "auth.h"
#include "conf.h"
#include "conn.h"
#include "htab.h"
#include "listener.h"
#include "log.h"
#include "monitor.h"
#include "names.h"
#include "pending.h"
#include "presence.h"
#include "pubsub.h"
#include "stats.h"

TAILQ_HEAD(conn_tq, conn);

struct broker {
	struct broker_conf conf;
	struct logger log;
	struct event_base *base;     /* owned */
	struct listener lis;
	struct htab conns;           /* id -> live (attached) conn */
	struct names names;
	struct pending_table pending;
	struct pubsub ps;            /* subscriptions (pubsub.h) */
	struct presence pr;          /* watched names (presence.h) */
	struct monitor mon;          /* taps (monitor.h) */
	struct stats st;             /* counters (stats.h) */
	struct conn_tq all;          /* not yet killed */
	struct conn_tq dead;         /* killed, awaiting the reaper */
	struct conn_tq flush;        /* output queued this iteration */
	struct event *reap_ev, *flush_ev, *stop_ev; /* owned */
	uint64_t next_conn_id;
	uint32_t nconns;             /* on the all-list */
	char id_hex[IPCHUB_BROKER_ID_LEN + 1];
	time_t started;
	bool stopping;
	struct iovec *iov;           /* owned scratch for evbuffer_peek */
	int iov_cap;
	struct auth_ctx auth;        /* policy, handshake FIFO (auth.h) */
};

/* Create a broker listening per conf (deep-copied; the broker owns its
 * copy). Takes ownership of conf->listen_fd (socket activation) whether
 * it succeeds or not. Calls sodium_init(). On failure returns NULL with a
 * one-line message in err. */
struct broker *broker_new(const struct broker_conf *conf, char *err,
			  size_t cap);

/* Run the loop until broker_stop() completes. Returns 0 or -1. */
int broker_run(struct broker *b);

/* Begin a graceful stop (idempotent). Safe from a libevent callback. */
void broker_stop(struct broker *b);

/* Free everything. Accepts NULL. */
void broker_free(struct broker *b);

static inline struct event_base *broker_base(struct broker *b)
{
	return b->base;
}

static inline const char *broker_path(const struct broker *b)
{
	return b->lis.x.path;
}

/* --- for the broker's modules --- */

/* Live, attached connection with this id, or NULL. */
struct conn *broker_conn_find(struct broker *b, uint64_t id);

/* Remove c from the registry (at detach). */
void broker_conn_unregister(struct broker *b, struct conn *c);

/* Put c on the flush list (its output was appended to). */
void broker_want_flush(struct broker *b, struct conn *c);

/* Move a killed c from the all-list to the dead list for the reaper. */
void broker_reap_later(struct broker *b, struct conn *c);

/* Cached loop time in milliseconds (monotonic enough for deadlines). */
uint64_t broker_now_ms(struct broker *b);

/* Make sure the iovec scratch holds n entries. Returns 0 or -ENOMEM. */
int broker_iov_reserve(struct broker *b, int n);

#endif
