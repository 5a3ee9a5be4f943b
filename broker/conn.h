/*
 * conn.h - one client connection: socket I/O, framing, lifecycle and
 * backpressure.
 *
 * Model: a struct conn owns its socket fd, an input and an output
 * evbuffer, and four events (read, write, resume, timer). Bytes are read
 * in chunks of at most IPCHUB_READ_CHUNK; the frame loop checks each
 * frame's length against the limit for the connection's state before
 * waiting for the rest, decodes the header through iovecs over the input
 * buffer (no copy of the body), and hands the frame to dispatch. A frame
 * is consumed either by dispatch moving its body into a receiver's output
 * (conn_forward) or by the loop draining it afterwards.
 *
 * States: AWAIT_HELLO -> READY -> CLOSING -> DEAD. CLOSING stops reading,
 * releases names and pending requests at once (peers see the connection
 * gone), and flushes what is queued for at most CONF_CLOSE_FLUSH_MS.
 * conn_kill() moves to DEAD from any state: it detaches the connection
 * from every broker table, stops its events and queues it on the broker's
 * reap list; the memory is freed by the reaper after the current callback
 * returns, never inside the connection's own callback. A pointer to a
 * conn therefore stays valid until the end of the loop iteration, but its
 * state must be checked after any call that may kill it.
 *
 * Backpressure: a sender whose next frame goes to a receiver R whose
 * output holds more than queue_hwm bytes is parked (blocked_on = R, linked
 * on R->blocked, reading disabled, the frame left in its input); a
 * connection whose own output is over queue_hwm stops processing input
 * (self_blocked). When a write brings R's output to at most
 * queue_hwm / IPCHUB_QUEUE_LWM_DIV, or R dies, every sender parked on it
 * is resumed through its resume event (deferred, never recursively).
 *
 * Partial frames: after the handshake, while the broker is reading a
 * connection whose next frame is incomplete, timer_ev runs for
 * conf.frame_timeout_ms; a frame that completes cancels it, the next
 * partial one starts it again, and parking stops it (the broker is not
 * reading then). On expiry the connection fails with PROTOCOL.
 *
 * Descriptors (PROTOCOL.md 6.6): reads are xport_recv() calls; what arrives
 * goes to in_fds, and each frame with `fds: n` claims the first n once it
 * is complete (fewer there, or some left when the input is empty: fatal
 * PROTOCOL). conn_forward() moves them to the receiver's out_fds as one
 * group at the frame's output offset; conn_flush() attaches each group to
 * the xport_send() that starts at that offset and closes the broker's copies
 * once it succeeded. A frame consumed any other way closes them. The
 * broker-wide count is stats.fds_in_flight; a receiver with
 * max_fds_per_conn queued parks its senders like the byte HWM does.
 *
 * Memfd bodies (PROTOCOL.md 6.10): route.c checks the seals and size of a
 * frame's memfd before routing it. To a receiver with memfd_rx the memfd
 * travels like any descriptor, and its size counts in the receiver's
 * queue (out_memfd, carried by its out_fds group) until it is written, so
 * conn_over_hwm() and the resume check see it, and after that while the
 * receiver's socket holds unread bytes (sent_memfd, SIOCOUTQ): a memfd
 * frame is tiny, so the socket buffer alone would let hundreds of large
 * bodies pile up at a receiver that does not read. No socket event tells
 * when it reads them, so while senders are parked on it memfd_ev polls
 * every IPCHUB_MEMFD_POLL_MS. To any other receiver the
 * broker maps it (f->map) and conn_forward() queues a normal frame whose
 * body references the mapping (evbuffer_add_reference: no copy in the
 * broker; unmapped once written or dropped).
 *
 * Writes: output is written when the broker's flush pass runs (after the
 * current batch of callbacks, before the loop sleeps) or when EV_WRITE
 * fires; EV_WRITE is enabled only while output remains.
 */
#ifndef IPCHUB_BROKER_CONN_H
#define IPCHUB_BROKER_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "auth.h"
#include "fdq.h"
#include "frame.h"
#include "names.h"
#include "pending.h"
#include "xport.h"

struct broker;
struct ps_sub;
struct pr_watch;
struct mon_tap;

enum conn_state {
	CONN_AWAIT_HELLO = 0,
	CONN_READY = 1,
	CONN_CLOSING = 2,
	CONN_DEAD = 3
};

/* One decoded client frame still sitting in its sender's input buffer. */
struct conn_frame {
	struct frame_hdr h;
	uint32_t len;      /* bytes after the length prefix */
	uint32_t hdr_len;  /* encoded header bytes */
	uint32_t body_len; /* len - hdr_len; 0 = no body */
	uint32_t batch;    /* messages of a checked batched SEND or PUBLISH;
	                    * 0 = none */
	uint32_t nfds;     /* descriptors it claims (WK_FDS), head of c->in_fds */
	bool fds_moved;    /* conn_forward() moved them to the receiver */
	void *map;         /* memfd body mapped for an inline delivery
	                    * (route.c), map_len bytes; conn_forward() takes
	                    * it, else conn_handle_frame() unmaps it */
	size_t map_len;
	bool consumed;     /* bytes already removed from the input */
	bool parked;       /* left in the input: sender parked */
};

struct conn {
	struct broker *b;          /* borrowed */
	uint64_t id;               /* from 1, never reused */
	uint64_t hash;             /* registry hash of id */
	xport_sock fd;             /* owned */
	struct xport_cred cred;    /* read once at accept (xport_accept) */
	enum conn_state state;
	struct evbuffer *in, *out; /* owned */
	struct event *rd_ev, *wr_ev, *resume_ev, *timer_ev; /* owned */
	struct event *memfd_ev;    /* owned: polls sent_memfd (6.10) */
	bool reading;              /* rd_ev added */
	bool writing;              /* wr_ev added */
	bool detached;             /* removed from names/pending/registry */

	struct names_owned names;
	struct names_cache dst_cache;     /* last SEND/REQUEST destination */
	struct pending_list req_pending;  /* requests this conn made */
	struct pending_list resp_pending; /* requests awaiting its reply */

	struct conn *blocked_on;          /* receiver we are parked on */
	TAILQ_HEAD(, conn) blocked;       /* senders parked on us */
	TAILQ_ENTRY(conn) blocked_link;
	bool self_blocked;                /* own output over hwm */
	bool head_checked;                /* head frame's body validated */
	bool big_frames;                  /* last frame handled was large:
	                                   * read frame by frame (conn_read) */
	uint32_t head_batch;              /* ... and its batch count (batch.h) */
	bool batch_rx;                    /* HELLO flags BATCH: takes batches whole */
	bool pub_batch_rx;                /* HELLO flags PUB_BATCH: takes batched
	                                   * PUBLISHes whole (pubsub.h) */
	bool fds_rx;                      /* HELLO flags FDS: takes descriptors */
	bool bridge;                      /* HELLO flags BRIDGE (federation) */
	bool memfd_rx;                    /* HELLO flags MEMFD: maps memfd bodies */
	uint64_t out_memfd;               /* bytes of the memfd bodies queued in
	                                   * out_fds: counted in its queue */
	uint64_t sent_memfd;              /* ... written to its socket and
	                                   * maybe unread: counted too */
	struct fdq in_fds;                /* received, not yet claimed by a frame */
	struct fdq out_fds;               /* queued to it, one group per frame at
	                                   * its offset in the output stream
	                                   * (bytes_out + bytes still in out) */
	uint64_t head_parked_ms;          /* when the head frame was parked */
	bool partial_timed;               /* timer_ev runs for a partial head frame */

	bool in_flush;
	TAILQ_ENTRY(conn) flush_link;     /* broker flush list */
	TAILQ_ENTRY(conn) link;           /* broker all-list, then dead-list */

	/* pub/sub, presence and monitor state (pubsub.c, presence.c,
	 * monitor.c; released at detach). */
	TAILQ_HEAD(, ps_sub) subs;        /* subscriptions, oldest first */
	TAILQ_HEAD(, pr_watch) watches;   /* presence watches */
	TAILQ_HEAD(, mon_tap) taps;       /* monitor taps */
	uint32_t nsubs;                   /* subs + watches + taps */
	uint32_t subs_backlog;            /* subs with queued publications */
	uint64_t drops;                   /* publications/copies lost to it */

	uint64_t msgs_in, bytes_in, msgs_out, bytes_out;
	uint64_t connected_ms;
	const char *close_reason;         /* static string */
	char gone_name[IPCHUB_MAX_NAME + 1]; /* primary name at detach */
	char agent[IPCHUB_MAX_AGENT + 1];
	struct conn_auth auth;            /* handshake and identity (auth.h) */
};

/* Create a connection for an accepted fd (non-blocking, CLOEXEC) and start
 * reading and the handshake timer. On success the conn owns fd; on failure
 * (NULL, out of memory) the caller still does. */
struct conn *conn_new(struct broker *b, xport_sock fd,
		      const struct xport_cred *cred, uint64_t id);

/* Close the fd and free everything. Only the broker's reaper (or
 * broker_free) calls this, for a conn that conn_kill() has detached. */
void conn_free(struct conn *c);

/* Drop the connection now (output is discarded). Idempotent. */
void conn_kill(struct conn *c, const char *reason);

/* Orderly close: stop reading, detach, flush, then kill. Idempotent. */
void conn_close(struct conn *c, const char *reason);

/* Fatal protocol error: send ERROR {id, code, ref, msg} and close. Logs a
 * warning naming the peer and the reason. */
void conn_fail(struct conn *c, int code, int ref, uint64_t id,
	       const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Queue a body-less frame built from h. */
void conn_send_hdr(struct conn *c, const struct frame_hdr *h);

/* Queue ERROR {id, code, ref, msg (text of the code if NULL), to, name}
 * (to/name omitted when NULL). */
void conn_send_error(struct conn *c, uint64_t id, int code, int ref,
		     const char *to, size_t to_len, const char *name,
		     size_t name_len, const char *msg);

/* The same with count = the messages of the batch the ERROR answers
 * (PROTOCOL.md 6.3.1); count 0 omits the key, as conn_send_error does. */
void conn_send_error_count(struct conn *c, uint64_t id, int code, int ref,
			   const char *to, size_t to_len, const char *name,
			   size_t name_len, const char *msg, uint32_t count);

/* Consume frame f from sender's input: queue the header h (re-encoded)
 * on dst's output, then move f's body there without copying when
 * libevent allows. dst may be the sender itself. */
void conn_forward(struct conn *sender, struct conn_frame *f,
		  const struct frame_hdr *h, struct conn *dst);

/* Write as much output as the socket takes; arm EV_WRITE if some remains;
 * resume parked senders once below the low-water mark. May kill c. */
void conn_flush(struct conn *c);

/* Whether c's output is over the high-water mark: queued bytes, queued
 * memfd bodies and memfd bodies in its socket not yet read. */
bool conn_over_hwm(struct conn *c);

/* Park sender on receiver (f stays in sender's input). */
void conn_park(struct conn *sender, struct conn *receiver, struct conn_frame *f);

/* Resume every sender parked on c (they re-run their frame loop from
 * their resume event). */
void conn_wake_blocked(struct conn *c);

/* "conn 5 (pid 42 uid 1000 name svc.db)" for log lines. */
const char *conn_desc(const struct conn *c, char *buf, size_t cap);

/* Primary name or NULL (*len = 0). */
const char *conn_primary(const struct conn *c, size_t *len);

#endif
