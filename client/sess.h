/*
 * sess.h - the client side of wire protocol v1 as a state machine without
 * I/O (internal).
 *
 * Model: a session owns two byte buffers. The outbound buffer holds encoded
 * frames not yet written; the caller takes bytes from it (sess_out_data)
 * and reports what the socket accepted (sess_out_consume). It grows as
 * needed: bounding it is the caller's policy (IPCHUB_CLIENT_OUT_HWM). The
 * inbound buffer holds bytes read from the socket; the caller asks for room
 * (sess_in_space), reads into it, commits (sess_in_commit), then pulls
 * decoded events (sess_next_event) until SESS_EV_NONE. The inbound buffer
 * never holds more than one incomplete frame plus one read chunk, and a
 * frame's declared length is checked against max_frame before room for it
 * is made: before WELCOME, against IPCHUB_MAX_HEADER (the broker sends no
 * bodies before the handshake), afterwards against the announced maximum.
 *
 * Every broker frame is fully validated (length, header via frame_decode
 * for the broker-to-client direction, body via frame_body_check, and the
 * frame kind against the handshake state). A bad frame kills the session:
 * it stays dead with that code and every later call reports it.
 *
 * Batches (PROTOCOL.md 6.3.1; batch.h): HELLO announces BATCH; a batched
 * SEND or an ERROR with `count` n yields one event per message, ids
 * id .. id + n - 1. Outbound, sess_queue_send() appends a SEND to the one
 * still waiting at the tail of the buffer when the broker takes batches.
 *
 * Lending (lend.h): with lend.slot set, a message event is built in
 * place, pointing into the inbound buffer and the scratch header, and
 * until sess_lend_end() the session neither moves those bytes nor decodes.
 *
 * The session does no I/O, never blocks and keeps no global state, so the
 * blocking API (ipchub.c) and a future event-driven API can share it.
 */
#ifndef IPCHUB_CLIENT_SESS_H
#define IPCHUB_CLIENT_SESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "frame.h"
#include "ipchub.h"

/* Bytes sess_in_space() offers at least, per read. */
#define SESS_READ_CHUNK (64u * 1024u)

enum sess_state {
	SESS_NEW = 0,     /* nothing sent yet */
	SESS_HELLO_SENT,  /* HELLO queued, waiting for WELCOME */
	SESS_READY,       /* WELCOME received */
	SESS_DEAD         /* fatal error; see sess.dead */
};

enum sess_ev_type {
	SESS_EV_NONE = 0, /* no complete frame buffered */
	SESS_EV_WELCOME,  /* handshake done; conn/max_frame now valid */
	SESS_EV_OK,       /* ev.id */
	SESS_EV_PONG,     /* ev.id */
	SESS_EV_ERROR,    /* ev.id, ev.code, ev.msg (kind 10, owned by caller) */
	SESS_EV_MSG,      /* SEND/REQUEST/REPLY: ev.msg owned by caller */
	SESS_EV_BYE       /* ev.code (0 if the broker gave none), ev.text */
};

struct sess_event {
	enum sess_ev_type type;
	uint64_t id;
	int code;
	uint32_t ref;     /* ERROR: kind of the frame it answers (0: unknown) */
	ipchub_msg *msg;  /* EV_ERROR, EV_MSG: caller frees */
	const char *text; /* EV_BYE: message or NULL; valid until next call */
};

struct sess_buf {
	uint8_t *data;
	size_t off; /* first unconsumed byte */
	size_t len; /* end of valid bytes */
	size_t cap;
	size_t open; /* bytes of the open batchable SEND at the tail, 0 none
	              * (batch.h); any other append clears it */
};

/* The open outbound SEND or PUBLISH frame (batch.h); valid while
 * out.open != 0. */
struct sess_batch {
	uint8_t kind;    /* WIRE_SEND (to: the name) or WIRE_PUBLISH (the topic) */
	uint64_t id;     /* its first message's id */
	uint32_t count;  /* messages in it (1: still a plain SEND) */
	uint32_t flags;  /* its flags apart from BATCH */
	size_t hdr_len;  /* prefix + header bytes */
	uint16_t to_len;
	char to[IPCHUB_MAX_NAME + 1];
};

/* An inbound frame being split into events (batch.h); active while
 * n != 0. Offsets are from the frame's start (in.off). */
struct sess_split {
	uint32_t n;    /* events in the frame */
	uint32_t i;    /* next to produce */
	size_t pos;    /* batched SEND or PUBLISH: offset of element i */
	size_t total;  /* prefix + frame length */
	ipchub_msg *tmpl; /* message 0 without body: the others are copies */
	bool slot_set;    /* lend.slot holds this frame's fields (lend.h) */
};

/* A message lent in place (lend.h). */
struct sess_lend {
	ipchub_msg *slot; /* non-NULL: build the next message event here */
	bool active;      /* a message in slot points into in and hdr */
	size_t consume;   /* bytes of in to drop when the loan ends */
};

struct sess {
	enum sess_state state;
	int dead;           /* IPCHUB_E_* once SESS_DEAD, else 0 */
	uint64_t next_id;   /* next id handed out; starts at 1 */
	uint64_t conn;      /* from WELCOME */
	uint32_t ver;       /* version chosen by the broker */
	uint32_t max_frame; /* broker's limit (header + body) */
	char broker[IPCHUB_BROKER_ID_LEN + 1];
	bool has_challenge; /* WELCOME carried an auth challenge */
	uint8_t challenge[32];
	struct sess_buf in;
	struct sess_buf out;
	struct frame_hdr hdr; /* scratch for decoding; holds EV_BYE text and
	                       * the header of a frame being split */
	bool batch_ok;        /* WELCOME carried flags BATCH */
	bool bridge;          /* set before HELLO: announce BRIDGE (fed.h) */
	bool pub_batch_ok;    /* ... and PUB_BATCH: PUBLISHes may be batched */
	bool fds_rx;          /* set before HELLO: announce FDS (the caller
	                       * reads with recvmsg and claims descriptors) */
	bool memfd_rx;        /* set before HELLO, with fds_rx: announce MEMFD
	                       * (the caller maps memfd bodies, 6.10) */
	bool memfd_ok;        /* WELCOME carried flags MEMFD: the broker
	                       * takes memfd bodies */
	struct sess_batch ob; /* the open outbound batch (out.open) */
	struct sess_split split;
	struct sess_lend lend;
};

/* Initialise an empty session (no allocation). */
void sess_init(struct sess *s);
/* Free both buffers. Messages already returned are the caller's. */
void sess_destroy(struct sess *s);

/* A fresh id for a frame that expects an answer. */
uint64_t sess_next_id(struct sess *s);

/* Queue HELLO {ver: MAX, ver_min: MIN, agent} (agent may be NULL; it is
 * truncated to IPCHUB_MAX_AGENT). Returns IPCHUB_OK, IPCHUB_E_NOMEM, or
 * IPCHUB_E_PROTOCOL if HELLO was already queued. */
int sess_queue_hello(struct sess *s, const char *agent);

/* Encode a client frame (header h, body of len bytes or none when len is
 * 0) into the outbound buffer. The caller has validated names and body.
 * Returns IPCHUB_OK, IPCHUB_E_TOO_LARGE if header + body exceed the
 * broker's max_frame, IPCHUB_E_NOMEM, or the session's fatal code if it is
 * dead. The buffer is unchanged on failure. */
int sess_queue_frame(struct sess *s, const struct frame_hdr *h,
		     const void *body, size_t len);

/* Encode a client frame into any buffer b, refusing frames whose header +
 * body exceed limit (IPCHUB_E_TOO_LARGE); IPCHUB_E_NOMEM. The buffer is
 * unchanged on failure (apart from a possible compaction, which keeps the
 * live bytes). sess_queue_frame() is this on the outbound buffer with the
 * session's limit; the event API also uses it to hold frames while it has
 * no connection. */
int sess_buf_encode(struct sess_buf *b, const struct frame_hdr *h,
		    const void *body, size_t len, uint32_t limit);
/* Append n raw bytes (already-encoded frames) to b: IPCHUB_OK or
 * IPCHUB_E_NOMEM (b unchanged). */
int sess_buf_append(struct sess_buf *b, const void *bytes, size_t n);
/* Make room for n more bytes at b's end (may compact, which keeps the
 * live bytes and b->open): IPCHUB_OK or IPCHUB_E_NOMEM. */
int sess_buf_reserve(struct sess_buf *b, size_t n);
/* Free b's storage and empty it. */
void sess_buf_free(struct sess_buf *b);

/* Bytes waiting to be written: returns a pointer into the outbound buffer
 * (valid until the next queue/consume call) and their count in *len. */
const uint8_t *sess_out_data(const struct sess *s, size_t *len);
static inline size_t sess_out_len(const struct sess *s)
{
	return s->out.len - s->out.off;
}
/* Drop the first n written bytes (n <= sess_out_len). */
void sess_out_consume(struct sess *s, size_t n);

/* Room to read into: *ptr and *cap describe at least SESS_READ_CHUNK bytes
 * (more when a large frame is partially buffered). Returns IPCHUB_OK,
 * IPCHUB_E_NOMEM, the session's fatal code, or IPCHUB_E_INVALID while a
 * message is lent (lend.h). */
int sess_in_space(struct sess *s, uint8_t **ptr, size_t *cap);
/* Account for n bytes just read into the space from sess_in_space(). */
void sess_in_commit(struct sess *s, size_t n);
/* Copy bytes in (sess_in_space + memcpy + commit), e.g. for tests. */
int sess_feed(struct sess *s, const void *bytes, size_t n);

/* Decode the next complete frame into *ev. Returns IPCHUB_OK with
 * ev->type == SESS_EV_NONE when no complete frame is buffered; IPCHUB_OK
 * with an event; IPCHUB_E_NOMEM (the frame stays buffered, retry later);
 * or a fatal code (IPCHUB_E_BAD_FRAME, IPCHUB_E_TOO_LARGE,
 * IPCHUB_E_PROTOCOL) after which the session is dead; IPCHUB_E_INVALID
 * (session unchanged) while a message is lent (lend.h). With lend.slot
 * set, message events other than ERRORs are lent (ev->msg is the slot).
 * *ev is only written on IPCHUB_OK. */
int sess_next_event(struct sess *s, struct sess_event *ev);

/* Mark the session dead with code (e.g. IPCHUB_E_CLOSED after EOF). */
void sess_kill(struct sess *s, int code);

#endif
