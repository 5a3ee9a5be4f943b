/*
 * msg.h - the message object behind the public `ipchub_msg` (internal).
 *
 * A message is one heap block: the struct, then its strings (from, to,
 * error text, each NUL-terminated) and a copy of the body, so freeing it is
 * one free() and it does not borrow from any frame buffer. It is built from
 * a decoded broker frame (SEND, REQUEST, REPLY, ERROR, PUBLISH, GAP,
 * PRESENCE or MONITOR) whose header the
 * frame codec has already validated. `next` links queued messages inside a
 * handle's inbound FIFO; it is NULL for a message owned by the application.
 *
 * A lent message (ipchub_recv_lent, lend.h) is the same struct with
 * `lent` set: either a slot inside the handle whose strings point into the
 * session's scratch header and whose body points into the inbound buffer,
 * or a queued block the handle still owns. ipchub_msg_free() ignores it;
 * the handle ends the loan at its next call.
 */
#ifndef IPCHUB_CLIENT_MSG_H
#define IPCHUB_CLIENT_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "frame.h"
#include "ipchub.h"

/* Kind given to asynchronous errors (the wire kind of ERROR). */
#define MSG_KIND_ERROR WIRE_ERROR

struct ipchub_msg {
	struct ipchub_msg *next; /* FIFO link, owned by the queue */
	int kind;                /* IPCHUB_KIND_* or MSG_KIND_ERROR */
	int code;                /* error code, 0 when not an error */
	uint64_t id;
	uint64_t from_id;
	uint32_t timeout;
	uint32_t ref;            /* ERROR: kind of the frame it answers, 0 if unknown */
	uint32_t uid;            /* stamped sender uid, UINT32_MAX if absent */
	uint8_t key_len;         /* stamped key id length, 0 if absent */
	uint8_t key[32];         /* stamped key id */
	uint32_t claim_uid;      /* federation claim (WK_CLAIM_UID) */
	bool has_claim_uid;
	uint8_t claim_key_len;   /* federation claim key id, 0 if absent */
	uint8_t claim_key[32];
	const char *from;        /* NULL when absent; points into the block */
	const char *to;          /* NULL when absent */
	const char *errtext;     /* NULL when absent */
	const char *topic;       /* PUBLISH: NULL when absent */
	const char *name;        /* PRESENCE: the watched name */
	uint64_t sub;            /* PUBLISH/GAP/MONITOR: subscription or tap */
	uint64_t count;          /* GAP: lost; MONITOR: full length if cut */
	uint64_t conn;           /* PRESENCE: owner; MONITOR: tapped conn */
	uint32_t event, reason;  /* PRESENCE/MONITOR */
	const uint8_t *body;     /* NULL when the frame had no body */
	size_t body_len;
	size_t size;             /* bytes of the whole block, for queue accounting */
	uint64_t epoch;          /* async API: connection it arrived on (0 otherwise) */
	bool lent;               /* the handle owns it: ipchub_msg_free ignores it */
	uint32_t fds_want;       /* descriptors the frame claims (WK_FDS) */
	uint32_t nfds;           /* descriptors attached so far (ipchub.c) */
	int fds[IPCHUB_MAX_FDS_PER_FRAME]; /* owned until taken (-1 then) */
	uint64_t memfd_len;      /* WK_MEMFD: the body is fds[0]'s content */
	void *map;               /* memfd body mapped read-only (body points
	                          * here), map_len bytes, owned; NULL if none */
	size_t map_len;
};

/* Close the descriptors m still owns. */
void msg_close_fds(ipchub_msg *m);
/* Close its descriptors and unmap its memfd body (ipchub_msg_free, loans
 * ending). */
void msg_release(ipchub_msg *m);

/* Build a message from a validated header of kind SEND, REQUEST, REPLY or
 * ERROR and its body bytes (body may be NULL when len is 0: no body).
 * Returns IPCHUB_OK with a new message in *out (caller owns it), or
 * IPCHUB_E_NOMEM (*out untouched). */
int msg_from_frame(const struct frame_hdr *h, const void *body, size_t len,
		   ipchub_msg **out);

/* Set m's scalar fields (kind, ids, stamps, PRESENCE/MONITOR fields)
 * from the validated header h; strings, body, size and links are left
 * to the caller. */
void msg_fill(ipchub_msg *m, const struct frame_hdr *h);

/* A copy of message t with another body (NULL/0: none): same kind,
 * stamps and strings, next NULL. For the messages of one batch, which
 * share everything but id and body. Returns IPCHUB_OK or IPCHUB_E_NOMEM
 * (*out untouched). */
int msg_clone(const ipchub_msg *t, const void *body, size_t len,
	      ipchub_msg **out);

#endif
