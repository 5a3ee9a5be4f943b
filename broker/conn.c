/*
 * conn.c - see conn.h for the model. Invariants kept here:
 * - rd_ev is added iff the state is AWAIT_HELLO or READY and the
 *   connection is neither parked nor self-blocked (conn_update_read);
 * - wr_ev is added iff output remains after a write attempt;
 * - a conn on another conn's blocked list has blocked_on pointing at it,
 *   and both are cleared together (park, wake, detach);
 * - after detach, no broker table refers to the conn.
 */
#include "conn.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "broker.h"
#include "dispatch.h"
#include "log.h"
#include "monitor.h"
#include "presence.h"
#include "pubsub.h"
#include "stats.h"

#ifndef EVBUFFER_IOVEC_IS_NATIVE_
#error "libevent's evbuffer_iovec must be struct iovec (mpr reads iovecs)"
#endif

static void conn_process(struct conn *c);
static void conn_memfd_watch(struct conn *c);

static void conn_update_read(struct conn *c)
{
	bool want = (c->state == CONN_AWAIT_HELLO || c->state == CONN_READY) &&
		    !c->blocked_on && !c->self_blocked;

	if (want && !c->reading) {
		event_add(c->rd_ev, NULL);
		c->reading = true;
	} else if (!want && c->reading) {
		event_del(c->rd_ev);
		c->reading = false;
	}
}

const char *conn_primary(const struct conn *c, size_t *len)
{
	return names_primary(&c->names, len);
}

const char *conn_desc(const struct conn *c, char *buf, size_t cap)
{
	size_t nlen;
	const char *name = conn_primary(c, &nlen);

	if (!name && c->gone_name[0]) {
		name = c->gone_name;
		nlen = strlen(name);
	}
	snprintf(buf, cap, "conn %llu (pid %ld uid %lu name %.*s)",
		 (unsigned long long)c->id, (long)c->cred.pid,
		 (unsigned long)c->cred.uid, name ? (int)nlen : 1,
		 name ? name : "-");
	return buf;
}

/* Bytes of memfd bodies written to c's socket that c may not have read
 * yet: once the socket holds nothing unread (SIOCOUTQ 0), none. The
 * kernel says how much is unread, not which frames, so until then all
 * of them count. */
static uint64_t conn_unread_memfd(struct conn *c)
{
	int q;

	if (c->sent_memfd && ioctl(c->fd, SIOCOUTQ, &q) == 0 && q == 0)
		c->sent_memfd = 0;
	return c->sent_memfd;
}

bool conn_over_hwm(struct conn *c)
{
	return evbuffer_get_length(c->out) + c->out_memfd +
		       conn_unread_memfd(c) >
	       c->b->conf.queue_hwm;
}

/* Remove c from names, pending requests, the registry and backpressure
 * lists. Requesters waiting on c get PEER_GONE now. */
static void conn_detach(struct conn *c)
{
	struct broker *b = c->b;
	struct pending *p;
	size_t nlen;
	const char *name;

	if (c->detached)
		return;
	c->detached = true;
	name = conn_primary(c, &nlen);
	if (name) {
		memcpy(c->gone_name, name, nlen);
		c->gone_name[nlen] = '\0';
	}
	broker_conn_unregister(b, c);
	presence_conn_gone(c); /* before the names go: watchers are told */
	pubsub_conn_gone(c);
	monitor_conn_gone(c);
	auth_conn_end(c);
	names_release_all(&b->names, &c->names);
	while ((p = pending_list_first(&c->req_pending)))
		pending_remove(&b->pending, p);
	while ((p = pending_list_first(&c->resp_pending))) {
		struct conn *a = p->requester;
		uint64_t id = p->id;

		pending_remove(&b->pending, p);
		if (!b->stopping)
			conn_send_error(a, id, WIRE_E_PEER_GONE, WIRE_REQUEST,
					NULL, 0, NULL, 0,
					"the responder disconnected");
	}
	conn_wake_blocked(c);
	if (c->blocked_on) {
		TAILQ_REMOVE(&c->blocked_on->blocked, c, blocked_link);
		c->blocked_on = NULL;
	}
}

void conn_kill(struct conn *c, const char *reason)
{
	struct broker *b = c->b;
	char d[384];

	if (c->state == CONN_DEAD)
		return;
	if (!c->close_reason)
		c->close_reason = reason ? reason : "closed";
	conn_detach(c);
	stats_conn_closed(&b->st, c);
	c->state = CONN_DEAD;
	event_del(c->rd_ev);
	event_del(c->wr_ev);
	event_del(c->resume_ev);
	event_del(c->timer_ev);
	event_del(c->memfd_ev);
	c->reading = c->writing = false;
	if (c->in_flush) {
		TAILQ_REMOVE(&b->flush, c, flush_link);
		c->in_flush = false;
	}
	log_info(&b->log,
		 "%s closed: %s (in %llu frames/%llu B, out %llu frames/%llu B)",
		 conn_desc(c, d, sizeof(d)), c->close_reason,
		 (unsigned long long)c->msgs_in, (unsigned long long)c->bytes_in,
		 (unsigned long long)c->msgs_out,
		 (unsigned long long)c->bytes_out);
	broker_reap_later(b, c);
}

void conn_close(struct conn *c, const char *reason)
{
	struct timeval tv = {
		.tv_sec = CONF_CLOSE_FLUSH_MS / 1000,
		.tv_usec = (CONF_CLOSE_FLUSH_MS % 1000) * 1000,
	};

	if (c->state >= CONN_CLOSING)
		return;
	c->close_reason = reason;
	conn_detach(c);
	c->state = CONN_CLOSING;
	c->self_blocked = false;
	conn_update_read(c);
	evbuffer_drain(c->in, evbuffer_get_length(c->in));
	evtimer_add(c->timer_ev, &tv);
	/* The flush pass kills the connection once its output is empty. */
	broker_want_flush(c->b, c);
}

void conn_fail(struct conn *c, int code, int ref, uint64_t id,
	       const char *fmt, ...)
{
	char msg[IPCHUB_MAX_ERRMSG + 1], d[384];
	va_list ap;

	if (c->state >= CONN_CLOSING)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_warn(&c->b->log, "%s rejected: %s: %s", conn_desc(c, d, sizeof(d)),
		 frame_code_name(code), msg);
	conn_send_error(c, id, code, ref, NULL, 0, NULL, 0, msg);
	conn_close(c, frame_code_name(code));
}

static void queue_bytes(struct conn *c, const void *buf, size_t n)
{
	evbuffer_add(c->out, buf, n);
	c->msgs_out++;
	broker_want_flush(c->b, c);
}

void conn_send_hdr(struct conn *c, const struct frame_hdr *h)
{
	uint8_t buf[FRAME_ENC_MAX];
	size_t n;

	if (c->state == CONN_DEAD)
		return;
	n = frame_encode(h, 0, buf, sizeof(buf));
	if (monitor_active(c->b))
		monitor_tap(c, WIRE_MONITOR_OUT, h, buf + IPCHUB_LEN_PREFIX,
			    n - IPCHUB_LEN_PREFIX, NULL, 0, NULL, 0);
	queue_bytes(c, buf, n);
}

void conn_send_error(struct conn *c, uint64_t id, int code, int ref,
		     const char *to, size_t to_len, const char *name,
		     size_t name_len, const char *msg)
{
	conn_send_error_count(c, id, code, ref, to, to_len, name, name_len,
			      msg, 0);
}

void conn_send_error_count(struct conn *c, uint64_t id, int code, int ref,
			   const char *to, size_t to_len, const char *name,
			   size_t name_len, const char *msg, uint32_t count)
{
	struct frame_hdr e;

	if (c->state == CONN_DEAD)
		return;
	stats_error(&c->b->st, code);
	frame_init(&e, WIRE_ERROR);
	e.id = id;
	e.code = (uint32_t)code;
	e.has |= FH(WK_ID) | FH(WK_CODE);
	if (ref) {
		e.ref = (uint32_t)ref;
		e.has |= FH(WK_REF);
	}
	if (!msg)
		msg = frame_code_text(code);
	frame_set_str(&e, WK_MSG, msg, strlen(msg));
	if (to && to_len)
		frame_set_str(&e, WK_TO, to, to_len);
	if (name && name_len)
		frame_set_str(&e, WK_NAME, name, name_len);
	if (count) {
		e.count = count;
		e.has |= FH(WK_COUNT);
	}
	conn_send_hdr(c, &e);
}

/* Bytes of the first len bytes of in that evbuffer_remove_buffer() will
 * copy: those in the last chain they reach when more data follows in it. */
static size_t shared_tail(struct broker *b, struct evbuffer *in, size_t len)
{
	size_t before = 0;
	int n;

	if (evbuffer_get_length(in) <= len)
		return 0; /* everything moves */
	n = evbuffer_peek(in, (ev_ssize_t)len, NULL, b->iov, b->iov_cap);
	if (n <= 0 || n > b->iov_cap)
		return 0; /* not counted; the copy happens all the same */
	for (int i = 0; i < n - 1; i++)
		before += b->iov[i].iov_len;
	return len - before;
}

static void unmap_cb(const void *data, size_t len, void *arg)
{
	(void)arg;
	munmap((void *)data, len);
}

/* conn_forward() of a frame whose memfd body route.c mapped for a
 * receiver without MEMFD: the same header without memfd and fds, and the
 * mapping as its body. The memfd is closed with the frame (not moved). */
static void conn_forward_mapped(struct conn *sender, struct conn_frame *f,
				const struct frame_hdr *h, struct conn *dst)
{
	uint8_t buf[FRAME_ENC_MAX];
	struct frame_hdr m = *h;
	size_t n;

	m.has &= ~(FH(WK_MEMFD) | FH(WK_FDS));
	n = frame_encode(&m, f->map_len, buf, sizeof(buf));
	if (monitor_active(sender->b))
		monitor_tap(dst, WIRE_MONITOR_OUT, &m, buf + IPCHUB_LEN_PREFIX,
			    n - IPCHUB_LEN_PREFIX, NULL, 0, NULL, f->map_len);
	stats_routed(&sender->b->st, n + f->map_len);
	evbuffer_drain(sender->in, IPCHUB_LEN_PREFIX + f->len);
	if (evbuffer_add(dst->out, buf, n) < 0 ||
	    evbuffer_add_reference(dst->out, f->map, f->map_len, unmap_cb,
				   NULL) < 0) {
		/* Out of memory half-way: the receiver's stream would be
		 * corrupt, so it cannot go on. */
		munmap(f->map, f->map_len);
		f->map = NULL;
		conn_kill(dst, "out of memory queueing a frame");
		return;
	}
	f->map = NULL;
	sender->b->st.memfd_inlined++;
	dst->msgs_out++;
	broker_want_flush(sender->b, dst);
}

void conn_forward(struct conn *sender, struct conn_frame *f,
		  const struct frame_hdr *h, struct conn *dst)
{
	uint8_t buf[FRAME_ENC_MAX + IPCHUB_FWD_COPY_MAX];
	const uint8_t *raw = NULL;
	bool small = f->body_len <= IPCHUB_FWD_COPY_MAX;
	size_t n;

	f->consumed = true;
	if (dst->state == CONN_DEAD) {
		evbuffer_drain(sender->in, IPCHUB_LEN_PREFIX + f->len);
		return;
	}
	if (f->map) {
		conn_forward_mapped(sender, f, h, dst);
		return;
	}
	if (f->nfds) {
		int fds[IPCHUB_MAX_FDS_PER_FRAME];

		/* route.c's room_for() reserved the room: cannot fail. */
		fdq_take(&sender->in_fds, fds, f->nfds);
		(void)fdq_push(&dst->out_fds, fds, f->nfds, true,
			       dst->bytes_out + evbuffer_get_length(dst->out));
		if (h->has & FH(WK_MEMFD)) {
			fdq_set_bytes(&dst->out_fds, h->memfd);
			dst->out_memfd += h->memfd;
		}
		f->fds_moved = true;
	}
	n = frame_encode(h, f->body_len, buf, FRAME_ENC_MAX);
	if (monitor_active(sender->b))
		monitor_tap(dst, WIRE_MONITOR_OUT, h, buf + IPCHUB_LEN_PREFIX,
			    n - IPCHUB_LEN_PREFIX, sender->in,
			    IPCHUB_LEN_PREFIX + f->hdr_len, NULL, f->body_len);
	if (h->from_id) /* not a broker service's own reply */
		stats_routed(&sender->b->st, n + f->body_len);
	if (small)
		raw = evbuffer_pullup(sender->in, IPCHUB_LEN_PREFIX + f->len);
	if (raw) {
		/* One append and one drain per small frame. */
		memcpy(buf + n, raw + IPCHUB_LEN_PREFIX + f->hdr_len,
		       f->body_len);
		evbuffer_add(dst->out, buf, n + f->body_len);
		evbuffer_drain(sender->in, IPCHUB_LEN_PREFIX + f->len);
		dst->msgs_out++;
		broker_want_flush(sender->b, dst);
		return;
	}
	evbuffer_add(dst->out, buf, n);
	evbuffer_drain(sender->in, IPCHUB_LEN_PREFIX + f->hdr_len);
	/* Moves whole chains; only the part of the body in a chain shared
	 * with the next frame is copied (conn_read() ends reads at the end
	 * of large frames so that this is rare). */
	if (f->body_len) {
		sender->b->st.copied_bytes +=
			shared_tail(sender->b, sender->in, f->body_len);
		evbuffer_remove_buffer(sender->in, dst->out, f->body_len);
	}
	dst->msgs_out++;
	broker_want_flush(sender->b, dst);
}

/* While senders are parked on c (or c itself is, self_blocked) and memfd
 * bodies it was sent may be unread, poll for them to be read: no socket
 * event says so. */
static void conn_memfd_watch(struct conn *c)
{
	struct timeval tv = { 0, IPCHUB_MEMFD_POLL_MS * 1000 };

	if (c->sent_memfd && (!TAILQ_EMPTY(&c->blocked) || c->self_blocked) &&
	    c->state != CONN_DEAD && !evtimer_pending(c->memfd_ev, NULL))
		evtimer_add(c->memfd_ev, &tv);
}

void conn_park(struct conn *sender, struct conn *receiver, struct conn_frame *f)
{
	f->parked = true;
	if (!sender->head_parked_ms)
		sender->head_parked_ms = broker_now_ms(sender->b) | 1;
	if (receiver == sender) {
		sender->self_blocked = true;
		return;
	}
	sender->blocked_on = receiver;
	TAILQ_INSERT_TAIL(&receiver->blocked, sender, blocked_link);
	conn_memfd_watch(receiver);
}

void conn_wake_blocked(struct conn *c)
{
	struct conn *s;

	while ((s = TAILQ_FIRST(&c->blocked))) {
		TAILQ_REMOVE(&c->blocked, s, blocked_link);
		s->blocked_on = NULL;
		event_active(s->resume_ev, EV_TIMEOUT, 0);
	}
}

/* One write of c's output: up to the next frame that carries
 * descriptors, or, when such a frame is next, from its first byte with
 * its descriptors attached (and not beyond the following one). Returns
 * what write() returns. */
static int conn_write(struct conn *c)
{
	struct broker *b = c->b;
	struct fdq_group g, g2;
	size_t len = evbuffer_get_length(c->out), upto = len, got = 0;
	int fds[IPCHUB_MAX_FDS_PER_FRAME];
	xport_ssize n;
	int nv;

	if (!fdq_group(&c->out_fds, 0, &g))
		return evbuffer_write(c->out, c->fd);
	if (g.pos > c->bytes_out)
		return evbuffer_write_atmost(c->out, c->fd,
					     (ev_ssize_t)(g.pos - c->bytes_out));
	if (fdq_group(&c->out_fds, 1, &g2) && g2.pos - c->bytes_out < upto)
		upto = (size_t)(g2.pos - c->bytes_out);
	nv = evbuffer_peek(c->out, (ev_ssize_t)upto, NULL, b->iov, b->iov_cap);
	if (nv > b->iov_cap)
		nv = b->iov_cap;
	for (int i = 0; i < nv; i++) {
		if (got + b->iov[i].iov_len > upto)
			b->iov[i].iov_len = upto - got;
		got += b->iov[i].iov_len;
	}
	fdq_peek(&c->out_fds, fds, g.n);
	n = xport_send(c->fd, b->iov, nv, fds, g.n);
	if (n <= 0)
		return (int)n;
	fdq_drop(&c->out_fds, g.n); /* the receiver has its own copies */
	c->out_memfd -= g.bytes;
	c->sent_memfd += g.bytes;
	b->st.fds_in_flight -= g.n;
	b->st.fds_passed += g.n;
	evbuffer_drain(c->out, (size_t)n);
	return (int)n;
}

/* Whether c's queued descriptors are low enough to resume its senders. */
static bool conn_fds_low(const struct conn *c)
{
	return fdq_len(&c->out_fds) <=
	       c->b->conf.max_fds_per_conn / IPCHUB_QUEUE_LWM_DIV;
}

void conn_flush(struct conn *c)
{
	struct broker *b = c->b;
	size_t left;

	if (c->state == CONN_DEAD)
		return;
	while (evbuffer_get_length(c->out) > 0) {
		int n = conn_write(c);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			log_debug(&b->log, "conn %llu: write: %s",
				  (unsigned long long)c->id, strerror(errno));
			conn_kill(c, errno == EPIPE || errno == ECONNRESET
					     ? "peer closed"
					     : "write error");
			return;
		}
		if (n == 0)
			break;
		c->bytes_out += (uint64_t)n;
	}
	if (c->subs_backlog && !conn_over_hwm(c))
		pubsub_drain(c); /* schedules another flush if it added */
	left = evbuffer_get_length(c->out);
	if (left && !c->writing) {
		event_add(c->wr_ev, NULL);
		c->writing = true;
	} else if (!left && c->writing) {
		event_del(c->wr_ev);
		c->writing = false;
	}
	if (left + c->out_memfd + conn_unread_memfd(c) <=
		    b->conf.queue_hwm / IPCHUB_QUEUE_LWM_DIV &&
	    conn_fds_low(c)) {
		if (c->self_blocked && c->state == CONN_READY) {
			c->self_blocked = false;
			event_active(c->resume_ev, EV_TIMEOUT, 0);
		}
		conn_wake_blocked(c);
	} else if (!left) {
		/* Nothing left to write, so no write event will come: only
		 * the receiver reading its memfd bodies can free room. */
		conn_memfd_watch(c);
	}
	if (c->state == CONN_CLOSING && !left)
		conn_kill(c, NULL);
}

/* Copy the frame at the head of c's input to the monitors. */
static void tap_in(struct conn *c, const struct conn_frame *f)
{
	uint8_t hdr[IPCHUB_MAX_HEADER];
	struct evbuffer_ptr pos;

	evbuffer_ptr_set(c->in, &pos, IPCHUB_LEN_PREFIX, EVBUFFER_PTR_SET);
	evbuffer_copyout_from(c->in, &pos, hdr, f->hdr_len);
	monitor_tap(c, WIRE_MONITOR_IN, &f->h, hdr, f->hdr_len, c->in,
		    IPCHUB_LEN_PREFIX + f->hdr_len, NULL, f->body_len);
}

/* Close the n descriptors at the head of c's input FIFO: their frame
 * was answered with an error, or never reached a receiver. */
static void conn_drop_fds(struct conn *c, uint32_t n)
{
	if (!n)
		return;
	fdq_drop(&c->in_fds, n);
	c->b->st.fds_in_flight -= n;
	c->b->st.fds_refused += n;
}

/* Answer the head frame f with BAD_BODY (count: the messages of a batch
 * whose length was read, else 0) and drop it. Returns true: the
 * connection goes on. */
static bool bad_body(struct conn *c, const struct conn_frame *f,
		     const char *why, uint32_t count)
{
	char d[384];

	log_debug(&c->b->log, "%s: BAD_BODY in %s id %llu: %s",
		  conn_desc(c, d, sizeof(d)), frame_kind_name(f->h.kind),
		  (unsigned long long)f->h.id, why ? why : "");
	conn_send_error_count(c, f->h.id, WIRE_E_BAD_BODY, f->h.kind,
			      (f->h.has & FH(WK_TO)) ? f->h.to : NULL,
			      f->h.to_len, NULL, 0, why, count);
	conn_drop_fds(c, f->nfds);
	evbuffer_drain(c->in, IPCHUB_LEN_PREFIX + f->len);
	return true;
}

/* Decode and dispatch the complete frame of len bytes at the head of the
 * input. Returns true if the loop may continue with the next frame. */
static bool conn_handle_frame(struct conn *c, uint32_t len,
			      const struct iovec *first)
{
	struct broker *b = c->b;
	struct evbuffer_ptr pos;
	struct conn_frame f;
	struct iovec one;
	struct mpr r;
	const char *why = NULL;
	bool has_body = false;
	int n, rc;

	if (first->iov_len >= IPCHUB_LEN_PREFIX + (size_t)len) {
		/* The whole frame is in the first chain (the usual case):
		 * no need to locate it chain by chain. */
		mpr_init_buf(&r, &one,
			     (const uint8_t *)first->iov_base + IPCHUB_LEN_PREFIX,
			     len);
		goto decode;
	}
	evbuffer_ptr_set(c->in, &pos, IPCHUB_LEN_PREFIX, EVBUFFER_PTR_SET);
	n = evbuffer_peek(c->in, len, &pos, b->iov, b->iov_cap);
	if (n > b->iov_cap) {
		if (broker_iov_reserve(b, n) < 0) {
			conn_fail(c, WIRE_E_INTERNAL, 0, 0, "out of memory");
			return false;
		}
		n = evbuffer_peek(c->in, len, &pos, b->iov, b->iov_cap);
	}
	mpr_init(&r, b->iov, (size_t)n, len);
decode:
	rc = frame_decode(&r, FRAME_C2B, &f.h, &has_body, &why);
	if (rc != WIRE_E_OK) {
		conn_fail(c, rc, 0, 0, "malformed frame: %s",
			  why ? why : "bad header");
		return false;
	}
	f.nfds = (f.h.has & FH(WK_FDS)) ? f.h.fds : 0;
	f.fds_moved = false;
	f.map = NULL;
	f.map_len = 0;
	if (f.nfds > fdq_len(&c->in_fds)) {
		conn_fail(c, WIRE_E_PROTOCOL, f.h.kind, f.h.id,
			  "frame claims %u descriptors, %u arrived with it",
			  f.nfds, fdq_len(&c->in_fds));
		return false;
	}
	f.len = len;
	c->big_frames = IPCHUB_LEN_PREFIX + (size_t)len >= IPCHUB_READ_ALIGN_MIN;
	f.body_len = (uint32_t)mpr_left(&r);
	f.hdr_len = len - f.body_len;
	f.consumed = f.parked = false;
	c->msgs_in++;
	c->bytes_in += IPCHUB_LEN_PREFIX + (uint64_t)len;
	if (has_body && !c->head_checked) {
		uint32_t count = 0;

		/* frame_decode() allows BATCH only on SEND and PUBLISH. */
		rc = (f.h.flags & WF_BATCH) ? frame_batch_check(&r, &count, &why)
					    : frame_body_check(&r, &why);
		if (rc != WIRE_E_OK)
			return bad_body(c, &f, why, count);
		c->head_checked = true;
		c->head_batch = count;
	} else if (!has_body &&
		   (f.h.kind == WIRE_SEND || f.h.kind == WIRE_PUBLISH) &&
		   (f.h.flags & WF_BATCH)) {
		return bad_body(c, &f,
				"a batch (flags BATCH) needs a body: an array of messages",
				0);
	}
	/* A parked frame is not checked again: its count was kept. */
	f.batch = c->head_batch;
	if (monitor_active(b) && !c->head_parked_ms) /* not on a retry */
		tap_in(c, &f);
	dispatch_frame(c, &f);
	if (f.map) /* mapped for an inline delivery that did not happen */
		munmap(f.map, f.map_len);
	if (f.parked) {
		/* Counted again when the frame is retried. */
		c->msgs_in--;
		c->bytes_in -= IPCHUB_LEN_PREFIX + (uint64_t)len;
		return false;
	}
	if (!f.fds_moved)
		conn_drop_fds(c, f.nfds);
	c->head_checked = false;
	c->head_batch = 0;
	c->head_parked_ms = 0;
	if (!f.consumed && c->state <= CONN_READY)
		evbuffer_drain(c->in, IPCHUB_LEN_PREFIX + len);
	return c->state <= CONN_READY;
}

/* Start or stop the partial-frame timer (see conn.h) after the frame
 * loop: runs while READY, reading, and the head frame is incomplete. */
static void conn_update_partial(struct conn *c, bool partial)
{
	bool want = partial && c->state == CONN_READY && c->reading;

	if (want && !c->partial_timed) {
		struct timeval tv = {
			.tv_sec = c->b->conf.frame_timeout_ms / 1000,
			.tv_usec = (suseconds_t)(c->b->conf.frame_timeout_ms % 1000) *
				   1000,
		};

		evtimer_add(c->timer_ev, &tv);
		c->partial_timed = true;
	} else if (!want && c->partial_timed) {
		if (c->state == CONN_READY)
			evtimer_del(c->timer_ev);
		c->partial_timed = false;
	}
}

static void conn_process(struct conn *c)
{
	struct broker *b = c->b;
	bool partial = false;

	while (c->state == CONN_AWAIT_HELLO || c->state == CONN_READY) {
		uint8_t pfx[IPCHUB_LEN_PREFIX];
		struct iovec first = { NULL, 0 };
		size_t avail;
		uint32_t len, max;
		int rc;

		if (c->blocked_on || c->self_blocked)
			break;
		if (conn_over_hwm(c)) {
			/* Answers to c pile up: stop taking its frames until
			 * it reads them (PROTOCOL.md section 8). */
			c->self_blocked = true;
			conn_memfd_watch(c);
			break;
		}
		avail = evbuffer_get_length(c->in);
		if (avail < IPCHUB_LEN_PREFIX) {
			partial = avail > 0;
			break;
		}
		/* The prefix straight from the first chain when it holds it. */
		if (evbuffer_peek(c->in, -1, NULL, &first, 1) >= 1 &&
		    first.iov_len >= IPCHUB_LEN_PREFIX)
			memcpy(pfx, first.iov_base, sizeof(pfx));
		else
			evbuffer_copyout(c->in, pfx, sizeof(pfx));
		len = frame_get_len(pfx);
		max = c->state == CONN_READY && !auth_in_handshake(&c->auth)
			      ? b->conf.max_frame
			      : IPCHUB_MAX_PREAUTH_FRAME;
		rc = frame_len_check(len, max);
		if (rc != WIRE_E_OK) {
			conn_fail(c, rc, 0, 0,
				  "frame length %lu (allowed %u..%lu)",
				  (unsigned long)len, IPCHUB_MIN_FRAME,
				  (unsigned long)max);
			break;
		}
		if (avail - IPCHUB_LEN_PREFIX < len) {
			partial = true;
			break;
		}
		/* A complete frame: the next one gets its own deadline. */
		conn_update_partial(c, false);
		if (!conn_handle_frame(c, len, &first))
			break;
	}
	if (c->state == CONN_READY && fdq_len(&c->in_fds) &&
	    evbuffer_get_length(c->in) == 0)
		conn_fail(c, WIRE_E_PROTOCOL, 0, 0,
			  "%u descriptors arrived that no frame claims",
			  fdq_len(&c->in_fds));
	conn_update_read(c);
	conn_update_partial(c, partial);
}

/* Bytes to read to end exactly at the end of a large frame (at least
 * IPCHUB_READ_ALIGN_MIN): the rest of the head frame when it is buffered
 * in part, or, in a stream of large frames, the next frame whose length
 * prefix a peek shows; 0 when no such frame is known (read what the
 * socket holds). Capped at IPCHUB_READ_CHUNK: a longer frame is read in
 * several reads, the last of which ends at its end. Only when READY: the
 * frame length limits differ before. */
static size_t conn_read_aligned(struct conn *c)
{
	size_t have = evbuffer_get_length(c->in), total;
	uint8_t pfx[IPCHUB_LEN_PREFIX];

	if (c->state != CONN_READY)
		return 0;
	if (have >= IPCHUB_LEN_PREFIX) {
		evbuffer_copyout(c->in, pfx, sizeof(pfx));
	} else if (have == 0 && c->big_frames) {
		if (xport_peek(c->fd, pfx, sizeof(pfx)) != (xport_ssize)sizeof(pfx))
			return 0;
	} else {
		return 0;
	}
	total = IPCHUB_LEN_PREFIX + (size_t)frame_get_len(pfx);
	if (total < IPCHUB_READ_ALIGN_MIN || total <= have ||
	    frame_get_len(pfx) > c->b->conf.max_frame)
		return 0;
	return total - have < IPCHUB_READ_CHUNK ? total - have
						 : IPCHUB_READ_CHUNK;
}

/* xport_recv() into v; descriptors that came along join in_fds. Fails with
 * errno EBADMSG (truncated control message, or descriptors before the
 * handshake is done), EDQUOT (over --max-fds-per-conn or --max-fds-total)
 * or ENOMEM, closing them. */
static xport_ssize conn_recv(struct conn *c, struct iovec *v, int nv)
{
	struct broker *b = c->b;
	int fds[IPCHUB_MAX_FDS_PER_FRAME];
	uint32_t nfds = 0;
	xport_ssize n = xport_recv(c->fd, v, nv, fds, &nfds);
	int err = 0;

	if (n < 0 || nfds == 0)
		return n;
	if (c->state != CONN_READY)
		err = EBADMSG;
	else if (fdq_len(&c->in_fds) + nfds > b->conf.max_fds_per_conn ||
		 b->st.fds_in_flight + nfds > b->conf.max_fds_total)
		err = EDQUOT;
	else if (fdq_push(&c->in_fds, fds, nfds, false, 0) < 0)
		err = ENOMEM;
	if (err) {
		for (uint32_t i = 0; i < nfds; i++)
			close(fds[i]);
		b->st.fds_refused += nfds;
		errno = err;
		return -1;
	}
	b->st.fds_in_flight += nfds;
	return n;
}

/* Read what the socket holds, up to IPCHUB_READ_CHUNK, in one recvmsg(),
 * or exactly up to the end of a large frame (conn_read_aligned()).
 * evbuffer_read() of libevent 2.1 reads at most 4096 bytes per call
 * (EVBUFFER_MAX_READ), which cost one epoll_wait + ioctl + readv per
 * 4 KiB. Like it, this sizes the reservation with FIONREAD, so an idle
 * connection's small frame does not allocate a large chain. Returns what
 * read() returns (-1 with errno, 0 at EOF). */
static xport_ssize conn_read(struct conn *c)
{
	struct evbuffer_iovec v[2];
	long avail;
	int nv;
	size_t want = conn_read_aligned(c), left;
	xport_ssize n;

	if (want == 0) {
		avail = xport_readable(c->fd);
		if (avail <= 0)
			avail = 4096;
		want = (size_t)avail < IPCHUB_READ_CHUNK ? (size_t)avail
							  : IPCHUB_READ_CHUNK;
	}
	nv = evbuffer_reserve_space(c->in, (ev_ssize_t)want, v, 2);
	if (nv <= 0) {
		errno = ENOMEM;
		return -1;
	}
	if (v[0].iov_len >= want) {
		v[0].iov_len = want; /* an aligned read must end at the frame */
		nv = 1;
	} else if (nv == 2 && v[0].iov_len + v[1].iov_len > want)
		v[1].iov_len = want - v[0].iov_len;
	n = conn_recv(c, (struct iovec *)v, nv);
	if (n <= 0) {
		evbuffer_commit_space(c->in, v, 0);
		return n;
	}
	left = (size_t)n;
	for (int k = 0; k < nv; k++) {
		if (v[k].iov_len > left)
			v[k].iov_len = left;
		left -= v[k].iov_len;
	}
	evbuffer_commit_space(c->in, v, nv);
	return n;
}

static void read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	xport_ssize n;

	(void)fd;
	(void)what;
	n = conn_read(c);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return;
		if (errno == ENOMEM) {
			conn_fail(c, WIRE_E_INTERNAL, 0, 0, "out of memory");
			return;
		}
		if (errno == EBADMSG) {
			conn_fail(c, WIRE_E_PROTOCOL, 0, 0,
				  c->state == CONN_READY
					  ? "descriptor control message truncated (more than IPCHUB_MAX_FDS_PER_FRAME in one message)"
					  : "descriptors before the handshake");
			return;
		}
		if (errno == EDQUOT) {
			conn_fail(c, WIRE_E_LIMIT, 0, 0,
				  "too many descriptors in flight (--max-fds-per-conn %u, --max-fds-total %u)",
				  c->b->conf.max_fds_per_conn,
				  c->b->conf.max_fds_total);
			return;
		}
		log_debug(&c->b->log, "conn %llu: read: %s",
			  (unsigned long long)c->id, strerror(errno));
		conn_kill(c, errno == ECONNRESET ? "peer reset" : "read error");
		return;
	}
	if (n == 0) {
		conn_close(c, evbuffer_get_length(c->in)
				      ? "peer closed mid-frame"
				      : "peer closed");
		return;
	}
	conn_process(c);
}

static void write_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	conn_flush(arg);
}

static void memfd_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	(void)what;
	conn_flush(c); /* wakes the parked senders once low enough */
	if (c->state != CONN_DEAD)
		conn_memfd_watch(c);
}

static void resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	(void)what;
	if (c->state == CONN_AWAIT_HELLO || c->state == CONN_READY)
		conn_process(c);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	char d[384];

	(void)fd;
	(void)what;
	if (c->state == CONN_AWAIT_HELLO ||
	    (c->state == CONN_READY && auth_in_handshake(&c->auth))) {
		log_info(&c->b->log, "%s rejected: handshake not completed within %u ms",
			 conn_desc(c, d, sizeof(d)),
			 c->b->conf.handshake_timeout_ms);
		conn_kill(c, "handshake timeout");
	} else if (c->state == CONN_READY && c->partial_timed) {
		c->partial_timed = false;
		conn_fail(c, WIRE_E_PROTOCOL, 0, 0,
			  "frame not completed within %u ms",
			  c->b->conf.frame_timeout_ms);
	} else if (c->state == CONN_CLOSING) {
		log_debug(&c->b->log, "%s: %zu bytes not taken before close",
			  conn_desc(c, d, sizeof(d)),
			  evbuffer_get_length(c->out));
		conn_kill(c, NULL);
	}
}

struct conn *conn_new(struct broker *b, xport_sock fd,
		      const struct xport_cred *cred, uint64_t id)
{
	struct conn *c = calloc(1, sizeof(*c));
	struct timeval tv;

	if (!c)
		return NULL;
	c->b = b;
	c->id = id;
	c->fd = fd;
	c->cred = *cred;
	c->state = CONN_AWAIT_HELLO;
	pending_list_init(&c->req_pending);
	pending_list_init(&c->resp_pending);
	TAILQ_INIT(&c->blocked);
	TAILQ_INIT(&c->subs);
	TAILQ_INIT(&c->watches);
	TAILQ_INIT(&c->taps);
	fdq_init(&c->in_fds);
	fdq_init(&c->out_fds);
	c->in = evbuffer_new();
	c->out = evbuffer_new();
	c->rd_ev = event_new(b->base, fd, EV_READ | EV_PERSIST, read_cb, c);
	c->wr_ev = event_new(b->base, fd, EV_WRITE | EV_PERSIST, write_cb, c);
	c->resume_ev = event_new(b->base, -1, 0, resume_cb, c);
	c->timer_ev = evtimer_new(b->base, timer_cb, c);
	c->memfd_ev = evtimer_new(b->base, memfd_cb, c);
	if (!c->in || !c->out || !c->rd_ev || !c->wr_ev || !c->resume_ev ||
	    !c->timer_ev || !c->memfd_ev) {
		c->fd = XPORT_NONE; /* the caller keeps the fd on failure */
		conn_free(c);
		return NULL;
	}
	c->connected_ms = broker_now_ms(b);
	tv.tv_sec = b->conf.handshake_timeout_ms / 1000;
	tv.tv_usec = (suseconds_t)(b->conf.handshake_timeout_ms % 1000) * 1000;
	evtimer_add(c->timer_ev, &tv);
	conn_update_read(c);
	auth_conn_start(c);
	return c;
}

void conn_free(struct conn *c)
{
	uint32_t n;

	if (!c)
		return;
	auth_conn_end(c);
	if (c->rd_ev)
		event_free(c->rd_ev);
	if (c->wr_ev)
		event_free(c->wr_ev);
	if (c->resume_ev)
		event_free(c->resume_ev);
	if (c->timer_ev)
		event_free(c->timer_ev);
	if (c->memfd_ev)
		event_free(c->memfd_ev);
	if (c->in)
		evbuffer_free(c->in);
	if (c->out)
		evbuffer_free(c->out);
	xport_close(c->fd);
	n = fdq_clear(&c->in_fds) + fdq_clear(&c->out_fds);
	c->b->st.fds_in_flight -= n;
	c->b->st.fds_refused += n;
	free(c->names.v);
	free(c);
}
