/*
 * route.c - see route.h. The decoded client header is turned into the
 * delivered header in place: client-only keys (flags, to_id) are dropped
 * and the broker's stamps added, so no second 2 KiB header struct is built
 * per message. A batched SEND (f->batch messages, batch.h) takes the same
 * path as one message; every ERROR answering it carries count.
 */
#include "route.h"

#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>

#include "batch.h"
#include "broker.h"
#include "log.h"
#include "memfd.h"
#include "mpr.h"
#include "name.h"
#include "svc.h"

static void reject(struct conn *c, const struct conn_frame *f, int code,
		   const char *msg)
{
	const struct frame_hdr *h = &f->h;
	char d[384];

	log_debug(&c->b->log, "%s: %s id %llu to %s: %s",
		  conn_desc(c, d, sizeof(d)), frame_kind_name(h->kind),
		  (unsigned long long)h->id,
		  (h->has & FH(WK_TO)) ? h->to : "-", frame_code_name(code));
	conn_send_error_count(c, h->id, code, h->kind,
			      (h->has & FH(WK_TO)) ? h->to : NULL, h->to_len,
			      NULL, 0, msg, f->batch);
}

/* A memfd body (PROTOCOL.md 6.10), before anything else: its seals and
 * size, and, for a receiver that takes no memfd bodies (inline), whether
 * the frame it becomes fits max_frame with any header. Returns true if
 * the frame may go on; false if it was answered. */
static bool memfd_ok(struct conn *c, struct conn_frame *f, bool inl)
{
	int fd, rc;

	fdq_peek(&c->in_fds, &fd, 1); /* frame.c: fds is 1 with memfd */
	rc = memfd_body_check(fd, f->h.memfd);
	if (rc != WIRE_E_OK) {
		reject(c, f, rc, NULL);
		return false;
	}
	if (inl && f->h.memfd + IPCHUB_MAX_HEADER > c->b->conf.max_frame) {
		reject(c, f, WIRE_E_MEMFD_INLINE,
		       "the receiver takes no memfd bodies (no MEMFD in its HELLO) and the body is over max_frame");
		return false;
	}
	return true;
}

/* Map the checked memfd body of f for an inline delivery and validate it
 * as a body (BAD_BODY otherwise): the broker vouches for every inline
 * body it delivers. Returns true with f->map set, or false (answered). */
static bool memfd_map(struct conn *c, struct conn_frame *f)
{
	const char *why = NULL;
	struct iovec iov;
	struct mpr rd;
	int fd;

	fdq_peek(&c->in_fds, &fd, 1);
	f->map_len = (size_t)f->h.memfd;
	f->map = memfd_body_map(fd, f->map_len);
	if (!f->map) {
		reject(c, f, WIRE_E_INTERNAL, "cannot map the memfd body");
		return false;
	}
	mpr_init_buf(&rd, &iov, f->map, f->map_len);
	if (frame_body_check(&rd, &why) != WIRE_E_OK) {
		munmap(f->map, f->map_len);
		f->map = NULL;
		reject(c, f, WIRE_E_BAD_BODY, why);
		return false;
	}
	return true;
}

/* Whether the frame may go to r now (descriptors: r announced FDS and is
 * under its fd quota, whose room is then reserved; a memfd body: checked,
 * and mapped when r gets it inline). If not, the sender is parked or
 * answered (QUEUE_FULL when nowait, FDS_UNSUPPORTED, MEMFD_*), and false
 * is returned. */
static bool room_for(struct conn *c, struct conn_frame *f, struct conn *r,
		     bool nowait)
{
	bool memfd = (f->h.has & FH(WK_MEMFD)) != 0;
	bool inl = memfd && !r->memfd_rx;
	bool fds_full = false;

	if (memfd && !memfd_ok(c, f, inl))
		return false;
	if (inl) {
		/* Its one descriptor is the memfd: nothing to pass on. */
	} else if (f->nfds) {
		if (!r->fds_rx) {
			reject(c, f, WIRE_E_FDS_UNSUPPORTED,
			       "the receiver does not accept descriptors (no FDS in its HELLO)");
			return false;
		}
		fds_full = fdq_len(&r->out_fds) + f->nfds >
			   c->b->conf.max_fds_per_conn;
	}
	if (!conn_over_hwm(r) && !fds_full) {
		if (inl)
			return memfd_map(c, f);
		if (f->nfds && fdq_reserve(&r->out_fds, f->nfds) < 0) {
			reject(c, f, WIRE_E_INTERNAL, "out of memory");
			return false;
		}
		return true;
	}
	if (nowait) {
		reject(c, f, WIRE_E_QUEUE_FULL,
		       "the receiver's queue is full");
		return false;
	}
	conn_park(c, r, f);
	return false;
}

/* Federation keys (origin, claims; PROTOCOL.md 6.9) are accepted from a
 * bridge connection only, and an origin must be a remote name, so a
 * bridge can never speak as a local peer. Returns false when the frame
 * was answered. */
static bool fed_ok(struct conn *c, const struct conn_frame *f)
{
	const struct frame_hdr *h = &f->h;

	if (!(h->has & (FH(WK_ORIGIN) | FH(WK_CLAIM_UID) | FH(WK_CLAIM_KEY))))
		return true;
	if (!c->bridge) {
		reject(c, f, WIRE_E_NOT_AUTHORIZED,
		       "origin and claims are for bridge connections only");
		return false;
	}
	if ((h->has & FH(WK_ORIGIN)) &&
	    (name_check_addr(h->origin, h->origin_len) != WIRE_E_OK ||
	     !name_is_remote(h->origin, h->origin_len))) {
		reject(c, f, WIRE_E_BAD_NAME, "origin is not a remote name (name@hub)");
		return false;
	}
	return true;
}

/* Add the broker's stamps for a frame from c. A bridge's origin becomes
 * `from`; its claims travel on unchanged. */
static void stamp(struct conn *c, struct frame_hdr *h)
{
	size_t nlen;
	const char *name = conn_primary(c, &nlen);

	if (h->has & FH(WK_ORIGIN)) {
		name = h->origin;
		nlen = h->origin_len;
		h->has &= ~FH(WK_ORIGIN);
	} else if (c->bridge) {
		/* Its names are other hubs' peers: without an origin the
		 * sender is unnamed, never one of them. */
		name = NULL;
	}

	h->from_id = c->id;
	h->uid = (uint32_t)c->cred.uid;
	h->has |= FH(WK_FROM_ID) | FH(WK_UID);
	h->has &= ~(FH(WK_FLAGS) | FH(WK_TO_ID) | FH(WK_FROM));
	auth_stamp(c, h);
	if (name)
		frame_set_str(h, WK_FROM, name, nlen);
}

/* Common checks of SEND and REQUEST: returns the receiver, or NULL when
 * the frame was answered (or handed to the broker's services). */
static struct conn *destination(struct conn *c, struct conn_frame *f)
{
	const struct frame_hdr *h = &f->h;
	struct conn *r;

	/* A producer usually sends to the same name again and again: a
	 * cached registered name skips the grammar check and the hash. */
	if (names_cache_hit(&c->b->names, &c->dst_cache, h->to, h->to_len))
		return (struct conn *)c->dst_cache.e->owner;
	if (name_check_addr(h->to, h->to_len) != WIRE_E_OK) {
		reject(c, f, WIRE_E_BAD_NAME, "malformed destination name");
		return NULL;
	}
	if (name_is_reserved(h->to, h->to_len)) {
		if (f->nfds) {
			reject(c, f, WIRE_E_FDS_UNSUPPORTED,
			       "the broker's services take no descriptors");
			return NULL;
		}
		svc_frame(c, f);
		return NULL;
	}
	r = names_lookup_cached(&c->b->names, &c->dst_cache, h->to,
				h->to_len);
	if (!r)
		reject(c, f, WIRE_E_NO_SUCH_PEER, "no connection owns this name");
	return r;
}

void route_send(struct conn *c, struct conn_frame *f)
{
	struct conn *r = fed_ok(c, f) ? destination(c, f) : NULL;

	if (!r || !room_for(c, f, r, f->h.flags & WF_NOWAIT))
		return;
	stamp(c, &f->h);
	if (!f->batch)
		conn_forward(c, f, &f->h, r);
	else if (batch_forward(c, f, &f->h, r) < 0)
		reject(c, f, WIRE_E_INTERNAL, "out of memory splitting the batch");
}

void route_request(struct conn *c, struct conn_frame *f)
{
	struct broker *b = c->b;
	struct frame_hdr *h = &f->h;
	uint32_t timeout = (h->has & FH(WK_TIMEOUT)) ? h->timeout : 0;
	struct conn *r;

	if (pending_find(&b->pending, c->id, h->id)) {
		conn_fail(c, WIRE_E_PROTOCOL, WIRE_REQUEST, h->id,
			  "request id %llu is already pending",
			  (unsigned long long)h->id);
		return;
	}
	r = fed_ok(c, f) ? destination(c, f) : NULL;
	if (!r)
		return;
	if (c->req_pending.n >= b->conf.max_pending) {
		reject(c, f, WIRE_E_LIMIT, "too many pending requests");
		return;
	}
	if (!room_for(c, f, r, h->flags & WF_NOWAIT))
		return;
	if (timeout > IPCHUB_MAX_TIMEOUT_MS)
		timeout = IPCHUB_MAX_TIMEOUT_MS;
	if (timeout && c->head_parked_ms) {
		/* The deadline runs from when the broker first had the
		 * request, including the time its sender was parked. */
		uint64_t waited = broker_now_ms(b) - c->head_parked_ms;

		if (waited >= timeout) {
			reject(c, f, WIRE_E_TIMEOUT,
			       "the deadline passed while the receiver was busy");
			return;
		}
		timeout -= (uint32_t)waited;
	}
	if (pending_add(&b->pending, c->id, h->id, c, &c->req_pending, r,
			&r->resp_pending, timeout, NULL) < 0) {
		reject(c, f, WIRE_E_INTERNAL, "out of memory");
		return;
	}
	stamp(c, h);
	h->has &= ~FH(WK_TIMEOUT);
	if (timeout) {
		h->timeout = timeout;
		h->has |= FH(WK_TIMEOUT);
	}
	conn_forward(c, f, h, r);
}

void route_reply(struct conn *c, struct conn_frame *f)
{
	struct broker *b = c->b;
	struct frame_hdr *h = &f->h;
	struct pending *p = pending_find(&b->pending, h->to_id, h->id);
	struct conn *a;

	if (!fed_ok(c, f))
		return;
	if (!p) {
		/* A requester that existed and has gone: PEER_GONE; an
		 * unknown request of a live (or never seen) one: none. */
		if (!broker_conn_find(b, h->to_id) && h->to_id > 0 &&
		    h->to_id < b->next_conn_id)
			reject(c, f, WIRE_E_PEER_GONE,
			       "the requester disconnected");
		else
			reject(c, f, WIRE_E_NO_SUCH_REQUEST,
			       "no such pending request (answered, timed out or cancelled)");
		return;
	}
	if (p->responder != c) {
		reject(c, f, WIRE_E_NO_SUCH_REQUEST,
		       "the request was not delivered to this connection");
		return;
	}
	a = p->requester;
	if (!room_for(c, f, a, false))
		return;
	pending_remove(&b->pending, p);
	stamp(c, h);
	conn_forward(c, f, h, a);
}

void route_cancel(struct conn *c, struct conn_frame *f)
{
	struct broker *b = c->b;
	const struct frame_hdr *h = &f->h;
	struct pending *p = pending_find(&b->pending, c->id, h->id);

	if (!p) {
		reject(c, f, WIRE_E_NO_SUCH_REQUEST, "no such pending request");
		return;
	}
	pending_remove(&b->pending, p);
	conn_send_error(c, h->id, WIRE_E_CANCELLED, WIRE_REQUEST, NULL, 0,
			NULL, 0, "cancelled by the requester");
}

void route_on_expire(void *arg, struct pending *p)
{
	struct broker *b = arg;
	struct conn *a = p->requester;
	char d[384];

	log_debug(&b->log, "%s: request %llu timed out",
		  conn_desc(a, d, sizeof(d)), (unsigned long long)p->id);
	conn_send_error(a, p->id, WIRE_E_TIMEOUT, WIRE_REQUEST, NULL, 0, NULL,
			0, "the request's deadline passed");
}
