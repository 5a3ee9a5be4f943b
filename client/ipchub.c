/*
 * ipchub.c - the blocking client API (ipchub.h) on top of the session
 * state machine (sess.c) and poll(2).
 *
 * Model: a handle owns one non-blocking socket, one session (which owns
 * the inbound and outbound byte buffers) and a FIFO of received messages
 * the application has not taken yet. Every wait goes through run_until(),
 * which alternates three steps until a condition holds or a monotonic
 * deadline passes: decode buffered frames into events (dispatch), write
 * what is queued, poll for readability and writability. It always reads
 * while it waits to write, so two clients writing to each other cannot
 * deadlock; it stops reading once the FIFO holds IPCHUB_CLIENT_IN_MAX
 * bytes, which pushes back on the broker and through it on the senders.
 *
 * At most one call waits for an answer at a time (the handle is not
 * thread-safe), so the answer being waited for is a single slot
 * (struct wait). An answer that matches no waiter is either an
 * asynchronous error for the application (the broker could not deliver a
 * SEND or a REPLY: queued for ipchub_recv) or a late answer to a call that
 * already gave up (dropped: its caller was told TIMEOUT or INTERRUPTED).
 *
 * Lending (ipchub_recv_lent, lend.h): h->lent is the message currently
 * lent, either h->lent_slot (built in place by the session: strings in
 * its scratch header, body in its inbound buffer) or a message taken from
 * the FIFO, which the handle still owns. Invariant: a loan exists only
 * between the return of ipchub_recv_lent() and the entry of the next call
 * on the handle. Every public call except the accessors ends it first
 * (lend_release(), from check_live() or directly) before it decodes, reads
 * or writes; the reply calls first copy what they need from a lent
 * request, body included, into the outbound buffer. While a loan is
 * active the session refuses to decode or to make read room (which could
 * compact, grow or free the inbound buffer), and dispatch() in lending
 * mode stops at the message it lends (its condition c_have_lent then
 * holds), so nothing can move or overwrite the lent bytes by
 * construction.
 *
 * Connection state lives in the session: once it is dead (EOF, BYE, socket
 * error, malformed frame, fatal ERROR) every call returns the code it died
 * with, except ipchub_recv(), which first hands out what was queued.
 * The library never logs, never touches signal dispositions (it writes
 * with MSG_NOSIGNAL) and keeps no global state.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "batch.h"
#include <sodium.h>

#include "fdq.h"
#include "memfd.h"
#include "frame.h"
#include "fed.h"
#include "hdr.h"
#include "ipchub.h"
#include "key.h"
#include "lend.h"
#include "limits.h"
#include "mpr.h"
#include "msg.h"
#include "name.h"
#include "sess.h"
#include "xport.h"
#include "xq.h"


enum wait_for {
	WAIT_NONE = 0,
	WAIT_WELCOME, /* connect: WELCOME, or any ERROR */
	WAIT_OK,      /* register/unregister: OK or ERROR with id */
	WAIT_PONG,    /* ping: PONG or ERROR with id */
	WAIT_REPLY,   /* request: REPLY or ERROR with id */
	WAIT_PRESENCE /* watch: first PRESENCE or ERROR with id */
};

struct wait {
	enum wait_for what;
	uint64_t id;
	bool done;
	int code;         /* 0, or the error the answer carried */
	ipchub_msg *msg;  /* REPLY or ERROR message, owned until handed out */
	int64_t t_ns;     /* when the answer was decoded */
};

/* A buffer from ipchub_body_alloc(): a writable shared mapping of a
 * memfd (fd >= 0) or, when the body goes inline, heap memory (fd -1). */
struct body_blk {
	struct body_blk *next;
	void *p;
	size_t len;
	int fd;
};

struct ipchub {
	xport_sock fd;
	bool eof; /* the broker closed its end; drain, then die */
	struct sess s;
	struct wait w;
	ipchub_msg *qhead, *qtail; /* messages for ipchub_recv() */
	size_t qbytes;
	ipchub_msg *lent;      /* lent by ipchub_recv_lent(); NULL if none */
	ipchub_msg lent_slot;  /* where the session builds a lent message */
	/* After a write found the socket full: maybe_flush() does not write
	 * again before the queue reaches this length (0: no such limit). */
	size_t retry_at;
	unsigned spin_us; /* ipchub_set_spin(): busy-poll before sleeping */
	/* A bridge handle (fed.h): REPLYs and request ERRORs nobody waits
	 * for answer fed_queue() frames and go to ipchub_recv(). */
	bool fed;
	/* Descriptors (PROTOCOL.md 6.6): received and not yet claimed by a
	 * message; queued to go, one group per frame at its offset in the
	 * output stream (out_done + bytes still buffered). */
	struct fdq in_fds, out_fds;
	uint64_t out_done; /* outbound buffer bytes ever written */
	struct xq xq;      /* ipchub_send_buf() bodies, spliced in (xq.h) */
	/* Memfd bodies (PROTOCOL.md 6.10): bodies of at least memfd_min bytes
	 * (0: never) go as memfds when the broker takes them; out_memfd is
	 * the bytes of those queued in out_fds, counted like queued bytes;
	 * bodies lists the buffers ipchub_body_alloc() handed out. */
	size_t memfd_min;
	uint64_t out_memfd;
	struct body_blk *bodies;
	char path[XPORT_PATH_MAX];
};

/* ---- time ----------------------------------------------------------- */

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Deadline timeout_ms from now; a negative timeout means none. */
static int64_t deadline_in(int timeout_ms)
{
	if (timeout_ms < 0)
		return INT64_MAX;
	return now_ns() + (int64_t)timeout_ms * 1000000;
}

/* poll() timeout for a deadline: -1 for none, rounded up to whole ms. */
static int poll_timeout(int64_t deadline)
{
	int64_t left;

	if (deadline == INT64_MAX)
		return -1;
	left = deadline - now_ns();
	if (left <= 0)
		return 0;
	left = (left + 999999) / 1000000;
	return left > INT_MAX ? INT_MAX : (int)left;
}

/* ---- inbound FIFO --------------------------------------------------- */

static void q_push(ipchub *h, ipchub_msg *m)
{
	m->next = NULL;
	if (h->qtail)
		h->qtail->next = m;
	else
		h->qhead = m;
	h->qtail = m;
	h->qbytes += m->size;
}

static ipchub_msg *q_pop(ipchub *h)
{
	ipchub_msg *m = h->qhead;

	if (!m)
		return NULL;
	h->qhead = m->next;
	if (!h->qhead)
		h->qtail = NULL;
	h->qbytes -= m->size;
	m->next = NULL;
	return m;
}

/* End the loan of ipchub_recv_lent(), if any: a message from the FIFO is
 * freed, a message lent in place gives its frame back to the session. */
static void lend_release(ipchub *h)
{
	ipchub_msg *m = h->lent;

	if (!m)
		return;
	h->lent = NULL;
	msg_release(m);
	if (m != &h->lent_slot)
		free(m); /* ipchub_msg_free() would ignore it: it is lent */
	sess_lend_end(&h->s);
}

/* ---- socket I/O ----------------------------------------------------- */

static bool dead(const ipchub *h) { return h->s.state == SESS_DEAD; }

/* Kill the session for a socket error; returns the resulting code. */
static int io_fail(ipchub *h, int err)
{
	sess_kill(&h->s, (err == EPIPE || err == ECONNRESET) ? IPCHUB_E_CLOSED
							     : IPCHUB_E_IO);
	return h->s.dead;
}

/* Write queued bytes until done or the socket is full. Returns 0 or the
 * session's fatal code. */
static int do_write(ipchub *h)
{
	for (;;) {
		size_t len;
		const uint8_t *p = sess_out_data(&h->s, &len);
		int fds[IPCHUB_MAX_FDS_PER_FRAME];
		struct fdq_group g;
		struct iovec iov[XQ_IOV_MAX];
		uint32_t nf = 0;
		uint64_t nbytes = 0;
		size_t outn;
		xport_ssize n;
		int niov = 1;

		if (len == 0 && !xq_due(&h->xq, h->out_done))
			return 0;
		/* A frame with descriptors starts its own sendmsg(), which
		 * carries them and stops before the next such frame. */
		if (fdq_group(&h->out_fds, 0, &g)) {
			if (g.pos > h->out_done) {
				if (g.pos - h->out_done < len)
					len = (size_t)(g.pos - h->out_done);
			} else {
				nf = g.n;
				nbytes = g.bytes;
				fdq_peek(&h->out_fds, fds, nf);
				if (fdq_group(&h->out_fds, 1, &g) &&
				    g.pos - h->out_done < len)
					len = (size_t)(g.pos - h->out_done);
			}
		}
		iov[0].iov_base = (void *)p;
		iov[0].iov_len = len;
		if (h->xq.n) {
			/* A body due now belongs to the frame before any
			 * descriptors' frame: it goes first, on its own. */
			if (xq_due(&h->xq, h->out_done))
				nf = 0, len = 0;
			niov = xq_iov(&h->xq, h->out_done, p, len, iov,
				      XQ_IOV_MAX);
		}
		n = xport_send(h->fd, iov, niov, fds, nf);
		if (n > 0) {
			if (nf) {
				fdq_drop(&h->out_fds, nf);
				h->out_memfd -= nbytes;
			}
			outn = h->xq.n ? xq_advance(&h->xq, h->out_done, (size_t)n)
				       : (size_t)n;
			h->out_done += (uint64_t)outn;
			sess_out_consume(&h->s, outn);
			h->retry_at = 0;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			h->retry_at = len + IPCHUB_CLIENT_FLUSH_AT;
			return 0;
		}
		return io_fail(h, n < 0 ? errno : EPIPE);
	}
}

/* One read into the session's inbound buffer. Returns 0, IPCHUB_E_NOMEM
 * or the session's fatal code. EOF is noted (h->eof) and becomes
 * IPCHUB_E_CLOSED once the frames read before it have been dispatched. */
static int do_read(ipchub *h)
{
	int fds[IPCHUB_MAX_FDS_PER_FRAME];
	uint32_t nfds = 0;
	struct iovec iov;
	uint8_t *p;
	size_t cap;
	xport_ssize n;
	int rc;

	if (h->eof)
		return 0;
	rc = sess_in_space(&h->s, &p, &cap);
	if (rc)
		return rc;
	iov.iov_base = p;
	iov.iov_len = cap;
	n = xport_recv(h->fd, &iov, 1, fds, &nfds);
	if (n < 0 && errno == EBADMSG) {
		/* More descriptors than a frame carries: the broker broke
		 * the protocol (xport_recv closed what came). */
		sess_kill(&h->s, IPCHUB_E_PROTOCOL);
		return h->s.dead;
	}
	if (nfds && (fdq_len(&h->in_fds) + nfds > IPCHUB_MAX_FDS_PER_CONN ||
		     fdq_push(&h->in_fds, fds, nfds, false, 0) < 0)) {
		for (uint32_t i = 0; i < nfds; i++)
			close(fds[i]);
		sess_kill(&h->s, IPCHUB_E_PROTOCOL);
		return h->s.dead;
	}
	if (n > 0) {
		sess_in_commit(&h->s, (size_t)n);
		return 0;
	}
	if (n == 0) {
		h->eof = true;
		return 0;
	}
	if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
		return 0;
	return io_fail(h, errno);
}

/* ---- events --------------------------------------------------------- */

static bool waiting_for(const ipchub *h, enum wait_for what, uint64_t id)
{
	return h->w.what == what && !h->w.done && h->w.id == id;
}

static void w_finish(ipchub *h, int code, ipchub_msg *m)
{
	h->w.done = true;
	h->w.code = code;
	h->w.msg = m;
	h->w.t_ns = now_ns();
}

static void on_error(ipchub *h, const struct sess_event *ev)
{
	const struct wait *w = &h->w;
	bool answers;

	if (frame_code_is_fatal(ev->code))
		sess_kill(&h->s, ev->code);
	if (w->what == WAIT_WELCOME) /* any ERROR answers the HELLO */
		answers = !w->done;
	else
		answers = w->what != WAIT_NONE && waiting_for(h, w->what, ev->id);
	if (answers) {
		w_finish(h, ev->code, ev->msg);
		return;
	}
	if (h->fed && ev->ref == WIRE_REQUEST) {
		q_push(h, ev->msg);
		return;
	}
	switch (ev->ref) {
	case WIRE_REQUEST:
	case WIRE_REGISTER:
	case WIRE_UNREGISTER:
	case WIRE_PING:
	case WIRE_CANCEL:
	case WIRE_SUBSCRIBE:
	case WIRE_UNSUBSCRIBE:
	case WIRE_WATCH:
	case WIRE_UNWATCH:
	case WIRE_MONITOR:
		/* Answers a call that has already returned to its caller. */
		ipchub_msg_free(ev->msg);
		return;
	default:
		/* A SEND or REPLY that could not be delivered (or an error
		 * the broker did not attribute): the application decides. */
		q_push(h, ev->msg);
	}
}

/* Give message m the descriptors its frame claims, from the head of the
 * FIFO. Fewer there than it claims: the broker broke the protocol (they
 * travel with the frame's first byte); the session dies and m is freed
 * (a lent m gives its frame back). Returns 0 or -1. */
static int claim_fds(ipchub *h, ipchub_msg *m)
{
	if (m->fds_want > fdq_len(&h->in_fds)) {
		sess_kill(&h->s, IPCHUB_E_PROTOCOL);
		if (m->lent)
			sess_lend_end(&h->s);
		else
			ipchub_msg_free(m);
		return -1;
	}
	fdq_take(&h->in_fds, m->fds, m->fds_want);
	m->nfds = m->fds_want;
	return 0;
}

/* Turn the memfd of m (claimed, fds[0]) into its body: check its seals
 * and size, map it read-only, validate it as a body, close the
 * descriptor. A memfd that fails any of these is closed and m becomes an
 * error (a REPLY keeps its kind, with the code, so that the request it
 * answers ends; others become kind 10 with the frame's id): code
 * IPCHUB_E_MEMFD_UNSEALED / _SIZE, IPCHUB_E_BAD_BODY or IPCHUB_E_NOMEM. */
static void memfd_attach(ipchub_msg *m)
{
	int fd = m->fds[0];
	int code = memfd_body_check(fd, m->memfd_len);
	size_t len = (size_t)m->memfd_len;
	void *p = NULL;

	if (code == IPCHUB_OK) {
		p = memfd_body_map(fd, len);
		if (!p)
			code = IPCHUB_E_NOMEM;
		else if (ipchub_body_check(p, len) != IPCHUB_OK)
			code = IPCHUB_E_BAD_BODY;
	}
	msg_close_fds(m); /* a mapping outlives its descriptor */
	m->fds_want = 0;
	if (code == IPCHUB_OK) {
		m->map = p;
		m->map_len = len;
		m->body = p;
		m->body_len = len;
		m->size += len; /* counts against IPCHUB_CLIENT_IN_MAX */
		return;
	}
	if (p)
		munmap(p, len);
	if (m->kind != IPCHUB_KIND_REPLY)
		m->kind = MSG_KIND_ERROR;
	m->code = code;
	m->errtext = NULL;
}

typedef bool (*cond_fn)(const ipchub *h);
static bool c_have_msg(const ipchub *h);
static bool c_have_lent(const ipchub *h);

/* Decode complete buffered frames until none is left or, when stop_early,
 * until cond(h) holds: ipchub_recv() then decodes one message per call
 * instead of all that one read brought (thousands of small ones), so each
 * message is freed before the next is allocated and the allocator reuses
 * it. With the session's lend slot set (ipchub_recv_lent), a message is
 * lent instead of queued and cond (c_have_lent) stops the loop at it.
 * Returns 0, IPCHUB_E_NOMEM (the frame stays buffered), or the
 * session's fatal code once it is dead. */
static int dispatch(ipchub *h, cond_fn cond, bool stop_early)
{
	for (;;) {
		if (stop_early && cond(h))
			return 0;
		struct sess_event ev;
		int rc = sess_next_event(&h->s, &ev);

		if (rc)
			return rc;
		switch (ev.type) {
		case SESS_EV_NONE:
			if (h->eof) {
				sess_kill(&h->s, IPCHUB_E_CLOSED);
				return h->s.dead;
			}
			return 0;
		case SESS_EV_WELCOME:
			if (h->w.what == WAIT_WELCOME)
				w_finish(h, 0, NULL);
			break;
		case SESS_EV_OK:
			if (waiting_for(h, WAIT_OK, ev.id))
				w_finish(h, 0, NULL);
			break;
		case SESS_EV_PONG:
			if (waiting_for(h, WAIT_PONG, ev.id))
				w_finish(h, 0, NULL);
			break;
		case SESS_EV_ERROR:
			on_error(h, &ev);
			break;
		case SESS_EV_MSG:
			if (ev.msg->fds_want && claim_fds(h, ev.msg))
				return h->s.dead;
			if (ev.msg->memfd_len)
				memfd_attach(ev.msg);
			if (ev.msg->lent) {
				if (ev.msg->kind == IPCHUB_KIND_REPLY) {
					/* late: its descriptors and mapping go too */
					msg_release(ev.msg);
					sess_lend_end(&h->s);
				}
				else
					h->lent = ev.msg;
				break;
			}
			if (ev.msg->kind == IPCHUB_KIND_REPLY) {
				if (waiting_for(h, WAIT_REPLY, ev.id))
					w_finish(h, ev.msg->code, ev.msg);
				else if (h->fed)
					q_push(h, ev.msg);
				else /* late: its request timed out here */
					ipchub_msg_free(ev.msg);
			} else {
				/* The first PRESENCE of a watch answers the
				 * WATCH and is also the stream's first item. */
				if (ev.msg->kind == IPCHUB_KIND_PRESENCE &&
				    waiting_for(h, WAIT_PRESENCE, ev.id))
					w_finish(h, 0, NULL);
				q_push(h, ev.msg);
			}
			break;
		case SESS_EV_BYE:
			/* The session is dead now; the loop returns its code. */
			break;
		}
	}
}

/* Run I/O until cond(h) holds (IPCHUB_OK), the deadline passes
 * (IPCHUB_E_TIMEOUT), a signal interrupts poll (IPCHUB_E_INTERRUPTED), or
 * the connection fails (its code). Always flushes while it waits. The
 * condition is checked after every dispatch, so an answer that arrived
 * just before the connection died is still seen. */
/* Busy-poll (ipchub_set_spin): check pfd without blocking until it is
 * ready, spin_us have passed or the deadline is near. Returns what poll()
 * returns; 0 means go to sleep. */
static int spin_poll(const ipchub *h, struct pollfd *pfd, int64_t deadline)
{
	int64_t until = now_ns() + (int64_t)h->spin_us * 1000;
	int n;

	if (until > deadline)
		until = deadline;
	do {
		n = poll(pfd, 1, 0);
	} while (n == 0 && now_ns() < until);
	return n;
}

static int run_until(ipchub *h, int64_t deadline, cond_fn cond)
{
	for (int iter = 0;; iter++) {
		struct pollfd pfd = {.fd = h->fd};
		bool can_read;
		int rc, n;

		rc = dispatch(h, cond, cond == c_have_msg || cond == c_have_lent);
		if (cond(h))
			return IPCHUB_OK;
		if (rc)
			return rc;
		rc = do_write(h);
		if (rc)
			return rc;
		if (cond(h))
			return IPCHUB_OK;
		if (iter > 0 && now_ns() >= deadline)
			return IPCHUB_E_TIMEOUT;

		can_read = h->qbytes < IPCHUB_CLIENT_IN_MAX;
		if (can_read)
			pfd.events |= POLLIN;
		if (sess_out_len(&h->s) > 0 || h->xq.n)
			pfd.events |= POLLOUT;
		n = h->spin_us ? spin_poll(h, &pfd, deadline) : 0;
		if (n == 0)
			n = poll(&pfd, 1, poll_timeout(deadline));
		if (n < 0) {
			if (errno == EINTR)
				return IPCHUB_E_INTERRUPTED;
			return errno == ENOMEM ? IPCHUB_E_NOMEM : IPCHUB_E_IO;
		}
		if (n == 0)
			continue; /* the deadline check above decides */
		/* On HUP/ERR read even when the FIFO is full: that is how the
		 * end of the stream (or the socket error) is learnt. */
		if ((can_read && (pfd.revents & POLLIN)) ||
		    (pfd.revents & (POLLHUP | POLLERR))) {
			rc = do_read(h);
			if (rc)
				return rc;
		}
	}
}

static bool c_wait_done(const ipchub *h) { return h->w.done; }
static bool c_out_empty(const ipchub *h)
{
	return sess_out_len(&h->s) == 0 && h->xq.n == 0;
}
static bool c_out_below_hwm(const ipchub *h)
{
	return sess_out_len(&h->s) + h->xq.bytes + h->out_memfd <=
		       IPCHUB_CLIENT_OUT_HWM &&
	       fdq_len(&h->out_fds) <= IPCHUB_CLIENT_OUT_FDS_MAX;
}
static bool c_have_msg(const ipchub *h) { return h->qhead != NULL; }
static bool c_have_lent(const ipchub *h)
{
	return h->lent != NULL || h->qhead != NULL;
}

static void w_start(ipchub *h, enum wait_for what, uint64_t id)
{
	ipchub_msg_free(h->w.msg);
	h->w = (struct wait){.what = what, .id = id};
}

/* Take the answer out of the wait slot; the caller owns *m (may be NULL). */
static void w_end(ipchub *h, ipchub_msg **m)
{
	if (m)
		*m = h->w.msg;
	else
		ipchub_msg_free(h->w.msg);
	h->w = (struct wait){0};
}

/* Send one frame that expects an answer and wait for it. On return the
 * wait slot has been cleared; *m (if not NULL) receives the answer's
 * message (REPLY or ERROR) when one arrived, which the caller frees.
 * Returns the answer's code, or the local failure. */
static int await_answer(ipchub *h, uint64_t id, enum wait_for what,
			int64_t deadline, ipchub_msg **m, int64_t *t_answer);

static int call(ipchub *h, const struct frame_hdr *f, const void *body,
		size_t len, enum wait_for what, int64_t deadline,
		ipchub_msg **m, int64_t *t_answer)
{
	int rc = sess_queue_frame(&h->s, f, body, len);

	if (rc)
		return rc;
	return await_answer(h, f->id, what, deadline, m, t_answer);
}

/* Wait for the answer of the queued frame id (call()'s second half). */
static int await_answer(ipchub *h, uint64_t id, enum wait_for what,
			int64_t deadline, ipchub_msg **m, int64_t *t_answer)
{
	int rc;

	w_start(h, what, id);
	rc = run_until(h, deadline, c_wait_done);
	if (h->w.done) {
		rc = h->w.code;
		if (t_answer)
			*t_answer = h->w.t_ns;
		w_end(h, m);
		return rc;
	}
	w_end(h, NULL);
	return rc;
}

/* Block until the outbound buffer is at most the high-water mark. */
static int wait_room(ipchub *h)
{
	if (c_out_below_hwm(h))
		return IPCHUB_OK;
	return run_until(h, INT64_MAX, c_out_below_hwm);
}

/* After queueing a frame: write without blocking once enough is queued.
 * Once a write found the socket full, wait for another
 * IPCHUB_CLIENT_FLUSH_AT bytes (or for a wait that polls for
 * writability) before trying again: while the broker is behind, writing
 * on every call is one failing syscall per message.
 * Returns 0 or the fatal code if the connection failed meanwhile. */
static int maybe_flush(ipchub *h)
{
	size_t len = sess_out_len(&h->s) + (size_t)h->xq.bytes;

	/* A memfd body counts as its size: it is written as soon as an
	 * inline body of that size would be. */
	if (len + h->out_memfd <= IPCHUB_CLIENT_FLUSH_AT || len < h->retry_at)
		return 0;
	return do_write(h);
}

/* ---- validation ----------------------------------------------------- */

static int check_name(const char *name, size_t *len)
{
	return hdr_check_name(name, len);
}

static int check_addr(const char *name, size_t *len)
{
	return hdr_check_addr(name, len);
}

/* Whether a body of len bytes with nfds descriptors goes as a memfd. */
static bool want_memfd(const ipchub *h, size_t len, size_t nfds)
{
	return nfds == 0 && h->s.memfd_ok && h->memfd_min &&
	       len >= h->memfd_min && len <= IPCHUB_MAX_MEMFD_BODY;
}

/* A body that will go as a memfd may exceed max_frame. */
static int check_body(const ipchub *h, const void *body, size_t len)
{
	if (want_memfd(h, len, 0) && body)
		return ipchub_body_check(body, len);
	return hdr_check_body(h->s.max_frame, body, len);
}

/* On entry to a call: end any loan, then report a dead connection. */
static int check_live(ipchub *h)
{
	if (!h)
		return IPCHUB_E_INVALID;
	lend_release(h);
	return dead(h) ? h->s.dead : IPCHUB_OK;
}

/* ---- connection ----------------------------------------------------- */

static int map_connect_errno(int err)
{
	switch (err) {
	case ENOENT:
	case ECONNREFUSED:
	case ENOTDIR:
		return IPCHUB_E_NO_BROKER;
	case EINTR:
		return IPCHUB_E_INTERRUPTED;
	case ENOMEM:
	case ENOBUFS:
		return IPCHUB_E_NOMEM;
	default:
		return IPCHUB_E_IO;
	}
}

/* Connect the non-blocking socket before the deadline. */
static int sock_connect(ipchub *h, int64_t deadline)
{
	for (;;) {
		struct pollfd pfd = {.events = POLLOUT};
		int err, n, r = xport_connect(h->path, &h->fd);

		if (r == 0)
			return IPCHUB_OK;
		if (r == -EINVAL || r == -ENAMETOOLONG)
			return IPCHUB_E_INVALID;
		if (r == -EAGAIN) {
			/* Backlog full: AF_UNIX does not queue the attempt. */
			if (now_ns() >= deadline)
				return IPCHUB_E_TIMEOUT;
			if (poll(NULL, 0, IPCHUB_CLIENT_CONNECT_RETRY_MS) < 0 && errno == EINTR)
				return IPCHUB_E_INTERRUPTED;
			continue;
		}
		if (r != -EINPROGRESS)
			return map_connect_errno(-r);
		pfd.fd = h->fd;
		n = poll(&pfd, 1, poll_timeout(deadline));
		if (n < 0)
			return map_connect_errno(errno);
		if (n == 0)
			return IPCHUB_E_TIMEOUT;
		err = xport_connect_result(h->fd);
		return err ? map_connect_errno(err) : IPCHUB_OK;
	}
}

/* Prove k to the broker right after WELCOME (PROTOCOL.md section 6.7):
 * AUTH {pk, nonce, sig}, answered OK {id: 0} or ERROR AUTH_FAILED. */
static int authenticate(ipchub *h, const struct key *k, int64_t deadline)
{
	struct frame_hdr f;
	struct transcript_in in;

	if (!h->s.has_challenge ||
	    strlen(h->s.broker) != IPCHUB_BROKER_ID_LEN)
		return IPCHUB_E_PROTOCOL; /* a broker that cannot check keys */
	frame_init(&f, WIRE_AUTH);
	memcpy(f.pk, k->pk, sizeof(f.pk));
	randombytes_buf(f.nonce, sizeof(f.nonce));
	in = (struct transcript_in){
		.ver = h->s.ver,
		.broker = h->s.broker,
		.conn = h->s.conn,
		.challenge = h->s.challenge,
		.nonce = f.nonce,
		/* What the broker read at accept (SO_PEERCRED: the
		 * effective uid at connect(); Windows: the SID's RID). */
		.uid = xport_self_uid(),
		.pk = k->pk,
	};
	key_sign(k, &in, f.sig);
	f.sig_len = AUTH_SIG_LEN;
	f.has |= FH(WK_PK) | FH(WK_NONCE) | FH(WK_SIG);
	f.id = 0; /* not on the wire: the broker answers with id 0 */
	return call(h, &f, NULL, 0, WAIT_OK, deadline, NULL, NULL);
}

static void handle_free(ipchub *h)
{
	ipchub_msg *m;

	lend_release(h);
	while ((m = q_pop(h)))
		ipchub_msg_free(m);
	while (h->bodies)
		ipchub_body_free(h, h->bodies->p);
	ipchub_msg_free(h->w.msg);
	sess_destroy(&h->s);
	(void)fdq_clear(&h->in_fds);
	(void)fdq_clear(&h->out_fds);
	xq_clear(&h->xq);
	xport_close(h->fd);
	free(h);
}

static int connect_common(const struct ipchub_opts *opts, bool bridge,
			  ipchub **out)
{
	const char *agent = "libipchub/" IPCHUB_VERSION_STRING;
	int timeout = IPCHUB_CLIENT_CONNECT_TIMEOUT_MS;
	const char *key_path = NULL;
	struct key key;
	bool have_key = false;
	char kerr[256];
	int64_t deadline;
	ipchub *h;
	int rc;

	if (!out)
		return IPCHUB_E_INVALID;
	if (opts && opts->timeout_ms < 0)
		return IPCHUB_E_INVALID;
	if (opts && opts->timeout_ms > 0)
		timeout = opts->timeout_ms;
	if (opts && opts->agent)
		agent = opts->agent;
	deadline = deadline_in(timeout);
	key_path = opts && opts->key ? opts->key : getenv("IPCHUB_KEY");
	if (key_path && *key_path) {
		/* Before connecting: a bad key file fails fast and clearly. */
		rc = key_load(key_path, &key, kerr, sizeof(kerr));
		if (rc)
			return rc;
		have_key = true;
	}

	h = calloc(1, sizeof(*h));
	if (!h) {
		if (have_key)
			key_wipe(&key);
		return IPCHUB_E_NOMEM;
	}
	h->fd = XPORT_NONE;
	sess_init(&h->s);
	h->s.fds_rx = xport_passes_fds(); /* do_read() takes descriptors */
	h->s.memfd_rx = h->s.fds_rx; /* and dispatch() maps memfd bodies */
	h->memfd_min = IPCHUB_MEMFD_MIN_DEFAULT;
	h->s.bridge = bridge;
	h->fed = bridge;
	fdq_init(&h->in_fds);
	fdq_init(&h->out_fds);
	xq_init(&h->xq);
	if (addr_resolve(opts ? opts->socket : NULL, h->path,
			 sizeof(h->path)) < 0) {
		rc = IPCHUB_E_INVALID;
		goto fail;
	}
	rc = sock_connect(h, deadline);
	if (rc)
		goto fail;
	rc = sess_queue_hello(&h->s, agent);
	if (rc)
		goto fail;
	w_start(h, WAIT_WELCOME, 0);
	rc = run_until(h, deadline, c_wait_done);
	if (h->w.done)
		rc = h->w.code;
	w_end(h, NULL);
	if (rc)
		goto fail;
	if (have_key) {
		rc = authenticate(h, &key, deadline);
		if (rc)
			goto fail;
		key_wipe(&key);
	}
	*out = h;
	return IPCHUB_OK;
fail:
	if (have_key)
		key_wipe(&key);
	handle_free(h);
	return rc;
}

int ipchub_connect(const struct ipchub_opts *opts, ipchub **out)
{
	return connect_common(opts, false, out);
}

int fed_connect(const struct ipchub_opts *opts, ipchub **out)
{
	return connect_common(opts, true, out);
}

int fed_queue(ipchub *h, struct frame_hdr *f, const void *body, size_t len,
	      uint64_t *id_out)
{
	int rc = check_live(h);

	if (rc == IPCHUB_OK)
		rc = check_body(h, body, len);
	if (rc == IPCHUB_OK)
		rc = wait_room(h);
	if (rc)
		return rc;
	if (!(f->has & FH(WK_ID))) {
		f->id = h->s.next_id;
		f->has |= FH(WK_ID);
	}
	rc = sess_queue_frame(&h->s, f, body, len);
	if (rc)
		return rc;
	if (f->id == h->s.next_id)
		(void)sess_next_id(&h->s);
	rc = maybe_flush(h);
	if (rc == IPCHUB_OK && id_out)
		*id_out = f->id;
	return rc;
}

void ipchub_close(ipchub *h)
{
	if (!h)
		return;
	lend_release(h);
	if (!dead(h) && h->s.state == SESS_READY) {
		struct frame_hdr f;

		frame_init(&f, WIRE_BYE);
		if (sess_queue_frame(&h->s, &f, NULL, 0) == IPCHUB_OK)
			(void)run_until(h, deadline_in(IPCHUB_CLIENT_CLOSE_FLUSH_MS),
					c_out_empty);
	}
	handle_free(h);
}

uint64_t ipchub_conn_id(const ipchub *h) { return h->s.conn; }

const char *ipchub_socket_path(const ipchub *h) { return h->path; }

size_t ipchub_max_frame(const ipchub *h) { return h->s.max_frame; }

int ipchub_fd(const ipchub *h) { return (int)h->fd; }

int ipchub_set_spin(ipchub *h, unsigned spin_us)
{
	if (!h || spin_us > IPCHUB_CLIENT_SPIN_MAX_US)
		return IPCHUB_E_INVALID;
	lend_release(h);
	h->spin_us = spin_us;
	return IPCHUB_OK;
}

int ipchub_ping(ipchub *h, int timeout_ms, uint64_t *rtt_us)
{
	struct frame_hdr f;
	int64_t t0, t1 = 0;
	int rc = check_live(h);

	if (rc)
		return rc;
	frame_init(&f, WIRE_PING);
	f.id = sess_next_id(&h->s);
	f.has |= FH(WK_ID);
	t0 = now_ns();
	rc = call(h, &f, NULL, 0, WAIT_PONG, deadline_in(timeout_ms), NULL,
		  &t1);
	if (rc == IPCHUB_OK && rtt_us)
		*rtt_us = (uint64_t)(t1 - t0) / 1000;
	return rc;
}

/* ---- names ---------------------------------------------------------- */

static int name_op(ipchub *h, enum wire_kind kind, const char *name,
		   int timeout_ms)
{
	struct frame_hdr f;
	size_t len;
	int rc = check_live(h);

	if (rc)
		return rc;
	rc = check_addr(name, &len);
	if (rc)
		return rc;
	if (kind == WIRE_REGISTER && name_is_reserved(name, len))
		return IPCHUB_E_BAD_NAME;
	frame_init(&f, kind);
	f.id = sess_next_id(&h->s);
	f.has |= FH(WK_ID);
	frame_set_str(&f, WK_NAME, name, len);
	return call(h, &f, NULL, 0, WAIT_OK, deadline_in(timeout_ms), NULL,
		    NULL);
}

int ipchub_register(ipchub *h, const char *name, int timeout_ms)
{
	return name_op(h, WIRE_REGISTER, name, timeout_ms);
}

int ipchub_unregister(ipchub *h, const char *name, int timeout_ms)
{
	return name_op(h, WIRE_UNREGISTER, name, timeout_ms);
}

/* ---- messages ------------------------------------------------------- */

/* Duplicates of the caller's n descriptors (close-on-exec) into dup:
 * IPCHUB_OK, or IPCHUB_E_INVALID (too many, NULL, one not open) /
 * IPCHUB_E_NOMEM with nothing left open, or IPCHUB_E_FDS_UNSUPPORTED on a
 * transport that carries none (Windows named pipes, xport.h). */
static int fds_dup(const int *fds, size_t n, int *dup)
{
	if (n > IPCHUB_MAX_FDS_PER_FRAME || (n && !fds))
		return IPCHUB_E_INVALID;
	if (n && !xport_passes_fds())
		return IPCHUB_E_FDS_UNSUPPORTED;
	for (size_t i = 0; i < n; i++) {
		dup[i] = fds[i] < 0 ? -1 : fcntl(fds[i], F_DUPFD_CLOEXEC, 0);
		if (dup[i] < 0) {
			int rc = (fds[i] < 0 || errno == EBADF) ? IPCHUB_E_INVALID
								: IPCHUB_E_NOMEM;

			while (i--)
				close(dup[i]);
			return rc;
		}
	}
	return IPCHUB_OK;
}

static int queue_fds(ipchub *h, struct frame_hdr *f, const void *body,
		     size_t len, int *dup, size_t n);

/* Queue frame f with the sealed memfd mfd of len bytes as its body; the
 * handle owns mfd from now on whatever happens. */
static int queue_memfd(ipchub *h, struct frame_hdr *f, int mfd, size_t len)
{
	int rc;

	f->memfd = len;
	f->has |= FH(WK_MEMFD);
	rc = queue_fds(h, f, NULL, 0, &mfd, 1);
	if (rc == IPCHUB_OK) {
		fdq_set_bytes(&h->out_fds, len);
		h->out_memfd += len;
	}
	return rc;
}

/* A sealed memfd holding a copy of body[0..len) in *mfd: IPCHUB_OK or
 * IPCHUB_E_NOMEM (nothing left open). The one copy of the memfd lane. */
static int memfd_copy(const void *body, size_t len, int *mfd)
{
	const uint8_t *p = body;
	size_t done = 0;
	int fd;

	if (memfd_body_new(len, &fd) < 0)
		return IPCHUB_E_NOMEM;
	while (done < len) {
		ssize_t n = pwrite(fd, p + done, len - done, (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			close(fd);
			return IPCHUB_E_NOMEM;
		}
		done += (size_t)n;
	}
	if (memfd_body_seal(fd) < 0) {
		close(fd);
		return IPCHUB_E_NOMEM;
	}
	*mfd = fd;
	return IPCHUB_OK;
}

/* Queue frame f (kind SEND, REQUEST or REPLY) with n descriptors dup
 * (from fds_dup()), which the handle owns from now on whatever happens:
 * on failure they are closed. With n 0 this is sess_queue_frame(), or,
 * for a body that goes as a memfd (want_memfd), queue_memfd() of a copy. */
static int queue_fds(ipchub *h, struct frame_hdr *f, const void *body,
		     size_t len, int *dup, size_t n)
{
	uint64_t pos = h->out_done + sess_out_len(&h->s);
	int rc;

	if (want_memfd(h, len, n) && !(f->has & FH(WK_MEMFD))) {
		int mfd;

		rc = memfd_copy(body, len, &mfd);
		return rc ? rc : queue_memfd(h, f, mfd, len);
	}

	if (n) {
		f->fds = (uint32_t)n;
		f->has |= FH(WK_FDS);
		if (fdq_reserve(&h->out_fds, (uint32_t)n) < 0) {
			rc = IPCHUB_E_NOMEM;
			goto fail;
		}
	}
	rc = sess_queue_frame(&h->s, f, body, len);
	if (rc)
		goto fail;
	if (n)
		(void)fdq_push(&h->out_fds, dup, (uint32_t)n, true, pos);
	return IPCHUB_OK;
fail:
	for (size_t i = 0; i < n; i++)
		close(dup[i]);
	return rc;
}

/* A one-way frame with id (the session's next) was queued: take the id,
 * flush if enough is queued, and report it in *id_out (may be NULL). */
static int queued(ipchub *h, uint64_t id, uint64_t *id_out)
{
	int rc;

	(void)sess_next_id(&h->s);
	rc = maybe_flush(h);
	if (rc)
		return rc;
	if (id_out)
		*id_out = id;
	return IPCHUB_OK;
}

/* SEND and PUBLISH: validate, queue (taking an id only once queued),
 * flush if the queue passed its threshold. dst goes under key (WK_TO or
 * WK_TOPIC); both follow the name grammar. */
static int one_way_mfd(ipchub *h, enum wire_kind kind, enum wire_key key,
		       const char *dst, const void *body, size_t len,
		       const int *fds, size_t nfds, int mfd, uint64_t *id_out);

static int one_way(ipchub *h, enum wire_kind kind, enum wire_key key,
		   const char *dst, const void *body, size_t len,
		   const int *fds, size_t nfds, uint64_t *id_out)
{
	return one_way_mfd(h, kind, key, dst, body, len, fds, nfds, -1,
			   id_out);
}

/* one_way() with, when mfd >= 0, that sealed memfd of len bytes as the
 * body (ipchub_send_body; body is NULL then, validated by the caller);
 * the handle owns mfd from the call on whatever happens. */
static int one_way_mfd(ipchub *h, enum wire_kind kind, enum wire_key key,
		       const char *dst, const void *body, size_t len,
		       const int *fds, size_t nfds, int mfd, uint64_t *id_out)
{
	int dup[IPCHUB_MAX_FDS_PER_FRAME];
	struct frame_hdr f;
	size_t dlen, add = 0;
	uint64_t id;
	int rc = check_live(h);

	if (rc)
		goto fail;
	rc = IPCHUB_E_INVALID;
	if (nfds > IPCHUB_MAX_FDS_PER_FRAME || (nfds && !fds))
		goto fail;
	/* The name of the batch being filled was checked when it opened. */
	if (!dst || !sess_batch_to_is(&h->s, kind, dst, &dlen)) {
		/* SEND may go to a remote name@hub; topics follow the names. */
		rc = kind == WIRE_SEND ? check_addr(dst, &dlen)
					 : check_name(dst, &dlen);
		if (rc)
			goto fail;
	}
	rc = mfd >= 0 ? IPCHUB_OK : check_body(h, body, len);
	if (rc)
		goto fail;
	rc = wait_room(h);
	if (rc)
		goto fail;
	id = h->s.next_id; /* taken only if the message is queued */
	if (!nfds && mfd < 0 && !(kind == WIRE_SEND && want_memfd(h, len, 0)))
		add = sess_batch_cost(&h->s, kind, dst, dlen, 0, id, len);
	if (mfd >= 0 || (kind == WIRE_SEND && want_memfd(h, len, nfds))) {
		frame_init(&f, kind);
		f.id = id;
		f.has |= FH(WK_ID);
		frame_set_str(&f, key, dst, dlen);
		rc = mfd >= 0 ? queue_memfd(h, &f, mfd, len)
			      : queue_fds(h, &f, body, len, NULL, 0);
		mfd = -1;
	} else if (nfds) {
		rc = fds_dup(fds, nfds, dup);
		if (rc)
			return rc;
		frame_init(&f, kind);
		f.id = id;
		f.has |= FH(WK_ID);
		frame_set_str(&f, key, dst, dlen);
		rc = queue_fds(h, &f, body, len, dup, nfds);
	} else if (add) {
		/* It joins the SEND (PUBLISH) waiting at the queue's tail:
		 * no header. */
		rc = sess_batch_add(&h->s, add, body, len);
	} else {
		frame_init(&f, kind);
		f.id = id;
		f.has |= FH(WK_ID);
		frame_set_str(&f, key, dst, dlen);
		rc = sess_queue_send(&h->s, &f, body, len);
	}
	if (rc)
		return rc;
	return queued(h, id, id_out);
fail:
	if (mfd >= 0)
		close(mfd);
	return rc;
}

int ipchub_send(ipchub *h, const char *to, const void *body, size_t len,
		uint64_t *id_out)
{
	return one_way(h, WIRE_SEND, WK_TO, to, body, len, NULL, 0, id_out);
}

int ipchub_send_fds(ipchub *h, const char *to, const void *body, size_t len,
		    const int *fds, size_t nfds, uint64_t *id_out)
{
	return one_way(h, WIRE_SEND, WK_TO, to, body, len, fds, nfds, id_out);
}

int ipchub_send_buf(ipchub *h, const char *to, void *body, size_t len,
		    ipchub_free_fn free_fn, void *arg, uint64_t *id_out)
{
	uint8_t head[FRAME_ENC_MAX];
	struct frame_hdr f;
	size_t dlen, n;
	uint64_t id;
	int rc = check_live(h);

	if (rc)
		return rc;
	if (!body || len == 0)
		return IPCHUB_E_INVALID;
	rc = check_name(to, &dlen);
	if (!rc)
		rc = check_body(h, body, len);
	if (!rc)
		rc = wait_room(h);
	if (rc)
		return rc;
	id = h->s.next_id;
	frame_init(&f, WIRE_SEND);
	f.id = id;
	f.has |= FH(WK_ID);
	frame_set_str(&f, WK_TO, to, dlen);
	n = frame_encode(&f, len, head, sizeof(head));
	if ((uint64_t)(n - IPCHUB_LEN_PREFIX) + len > h->s.max_frame)
		return IPCHUB_E_TOO_LARGE;
	/* The header closes any open batch; the body follows it. */
	if (xq_push(&h->xq, h->out_done + sess_out_len(&h->s) + n, body, len,
		    free_fn, arg) < 0)
		return IPCHUB_E_NOMEM;
	rc = sess_buf_append(&h->s.out, head, n);
	if (rc) {
		xq_unpush(&h->xq); /* the body stays the caller's */
		return rc;
	}
	return queued(h, id, id_out);
}

int ipchub_set_memfd_min(ipchub *h, size_t min)
{
	if (!h || (min && min < IPCHUB_MEMFD_MIN_MIN))
		return IPCHUB_E_INVALID;
	h->memfd_min = min;
	return IPCHUB_OK;
}

int ipchub_body_alloc(ipchub *h, size_t len, void **out)
{
	struct body_blk *b;
	int rc = check_live(h);

	if (rc)
		return rc;
	if (!out || len == 0)
		return IPCHUB_E_INVALID;
	if (!want_memfd(h, len, 0) && len > h->s.max_frame)
		return IPCHUB_E_TOO_LARGE;
	b = calloc(1, sizeof(*b));
	if (!b)
		return IPCHUB_E_NOMEM;
	b->len = len;
	b->fd = -1;
	if (want_memfd(h, len, 0)) {
		if (memfd_body_new(len, &b->fd) < 0) {
			free(b);
			return IPCHUB_E_NOMEM;
		}
		/* MAP_POPULATE: the pages are allocated and mapped in one
		 * call, not one fault each (faults dominate on some VMs). */
		b->p = mmap(NULL, len, PROT_READ | PROT_WRITE,
			    MAP_SHARED | MAP_POPULATE,
			    b->fd, 0);
		if (b->p == MAP_FAILED) {
			close(b->fd);
			free(b);
			return IPCHUB_E_NOMEM;
		}
	} else {
		b->p = malloc(len);
		if (!b->p) {
			free(b);
			return IPCHUB_E_NOMEM;
		}
	}
	b->next = h->bodies;
	h->bodies = b;
	*out = b->p;
	return IPCHUB_OK;
}

/* Unlink the allocation whose buffer is p: it, or NULL if p is not one. */
static struct body_blk *body_take(ipchub *h, const void *p)
{
	for (struct body_blk **pp = &h->bodies; *pp; pp = &(*pp)->next) {
		struct body_blk *b = *pp;

		if (b->p == p) {
			*pp = b->next;
			return b;
		}
	}
	return NULL;
}

static void body_blk_free(struct body_blk *b)
{
	if (b->fd >= 0) {
		munmap(b->p, b->len);
		close(b->fd);
	} else {
		free(b->p);
	}
	free(b);
}

void ipchub_body_free(ipchub *h, void *body)
{
	struct body_blk *b;

	if (!h || !body)
		return;
	b = body_take(h, body);
	if (b)
		body_blk_free(b);
}

int ipchub_send_body(ipchub *h, const char *to, void *body, uint64_t *id_out)
{
	struct body_blk *b;
	int mfd, rc;

	if (!h || !body)
		return IPCHUB_E_INVALID;
	b = body_take(h, body);
	if (!b)
		return IPCHUB_E_INVALID;
	rc = ipchub_body_check(b->p, b->len);
	if (rc || b->fd < 0) {
		if (rc == IPCHUB_OK)
			rc = ipchub_send(h, to, b->p, b->len, id_out);
		body_blk_free(b);
		return rc;
	}
	/* The writable mapping must go before F_SEAL_WRITE (EBUSY). */
	munmap(b->p, b->len);
	mfd = b->fd;
	rc = memfd_body_seal(mfd);
	if (rc < 0) {
		close(mfd);
		free(b);
		return IPCHUB_E_NOMEM;
	}
	rc = one_way_mfd(h, WIRE_SEND, WK_TO, to, NULL, b->len, NULL, 0, mfd,
			 id_out);
	free(b);
	return rc;
}

int ipchub_flush(ipchub *h, int timeout_ms)
{
	int rc = check_live(h);

	if (rc)
		return rc;
	return run_until(h, deadline_in(timeout_ms), c_out_empty);
}

static int request_common(ipchub *h, const char *to, const void *body,
			  size_t len, const int *fds, size_t nfds,
			  int timeout_ms, ipchub_msg **reply)
{
	int dup[IPCHUB_MAX_FDS_PER_FRAME];
	struct frame_hdr f;
	ipchub_msg *m = NULL;
	size_t tolen;
	int rc = check_live(h);

	if (rc)
		return rc;
	if (timeout_ms <= 0 || nfds > IPCHUB_MAX_FDS_PER_FRAME ||
	    (nfds && !fds))
		return IPCHUB_E_INVALID;
	if ((unsigned)timeout_ms > IPCHUB_MAX_TIMEOUT_MS)
		timeout_ms = (int)IPCHUB_MAX_TIMEOUT_MS;
	rc = check_addr(to, &tolen);
	if (rc)
		return rc;
	rc = check_body(h, body, len);
	if (rc)
		return rc;
	rc = wait_room(h);
	if (rc)
		return rc;
	frame_init(&f, WIRE_REQUEST);
	f.id = sess_next_id(&h->s);
	f.timeout = (uint32_t)timeout_ms;
	f.has |= FH(WK_ID) | FH(WK_TIMEOUT);
	frame_set_str(&f, WK_TO, to, tolen);
	rc = fds_dup(fds, nfds, dup);
	if (rc == IPCHUB_OK)
		rc = queue_fds(h, &f, body, len, dup, nfds);
	if (rc)
		return rc;
	rc = await_answer(h, f.id, WAIT_REPLY,
			  deadline_in(timeout_ms + IPCHUB_CLIENT_REQUEST_GRACE_MS),
			  &m, NULL);
	if (m) {
		/* An answer arrived: a reply (maybe an error reply) or the
		 * broker's ERROR; both are handed out. */
		if (reply)
			*reply = m;
		else
			ipchub_msg_free(m);
		return rc;
	}
	if ((rc == IPCHUB_E_TIMEOUT || rc == IPCHUB_E_INTERRUPTED) &&
	    !dead(h)) {
		/* We gave up first: free the broker's pending entry. The
		 * answer to the CANCEL is dropped by on_error(). */
		struct frame_hdr c;

		frame_init(&c, WIRE_CANCEL);
		c.id = f.id;
		c.has |= FH(WK_ID);
		if (sess_queue_frame(&h->s, &c, NULL, 0) == IPCHUB_OK)
			(void)do_write(h);
	}
	return rc;
}

int ipchub_request(ipchub *h, const char *to, const void *body, size_t len,
		   int timeout_ms, ipchub_msg **reply)
{
	return request_common(h, to, body, len, NULL, 0, timeout_ms, reply);
}

int ipchub_request_fds(ipchub *h, const char *to, const void *body,
		       size_t len, const int *fds, size_t nfds, int timeout_ms,
		       ipchub_msg **reply)
{
	return request_common(h, to, body, len, fds, nfds, timeout_ms, reply);
}

static int reply_common(ipchub *h, const ipchub_msg *req, int code,
			const char *text, const void *body, size_t len,
			const int *fds, size_t nfds)
{
	int dup[IPCHUB_MAX_FDS_PER_FRAME];
	struct frame_hdr f;
	bool queued = false;
	int rc;

	if (!h)
		return IPCHUB_E_INVALID;
	if (dead(h)) {
		lend_release(h);
		return h->s.dead;
	}
	/* req, text and body may all come from the message h lends: read
	 * them (hdr_reply copies the fields and the text) before the loan
	 * ends, and then the first thing that may read the socket. */
	rc = hdr_reply(&f, req, code, text);
	if (rc == IPCHUB_OK)
		rc = check_body(h, body, len);
	if (rc == IPCHUB_OK)
		rc = fds_dup(fds, nfds, dup);
	if (rc == IPCHUB_OK && h->lent) {
		/* The body may be the lent request's own bytes: copy it into
		 * the outbound buffer now; wait for room afterwards. */
		rc = queue_fds(h, &f, body, len, dup, nfds);
		queued = true;
	}
	lend_release(h);
	if (rc)
		return rc;
	if (!queued) {
		rc = wait_room(h);
		if (rc) {
			for (size_t i = 0; i < nfds; i++)
				close(dup[i]);
			return rc;
		}
		rc = queue_fds(h, &f, body, len, dup, nfds);
		if (rc)
			return rc;
	} else {
		rc = wait_room(h);
		if (rc)
			return rc;
	}
	return maybe_flush(h);
}

int ipchub_reply(ipchub *h, const ipchub_msg *req, const void *body,
		 size_t len)
{
	return reply_common(h, req, 0, NULL, body, len, NULL, 0);
}

int ipchub_reply_fds(ipchub *h, const ipchub_msg *req, const void *body,
		     size_t len, const int *fds, size_t nfds)
{
	return reply_common(h, req, 0, NULL, body, len, fds, nfds);
}

int ipchub_reply_error(ipchub *h, const ipchub_msg *req, int code,
		       const char *message)
{
	if (code <= 0 || code >= IPCHUB_E_IO)
		return IPCHUB_E_INVALID;
	return reply_common(h, req, code, message, NULL, 0, NULL, 0);
}

/* Wait at most timeout_ms until cond holds (a message queued, or lent):
 * the rest of a batch already buffered is taken without a clock read or a
 * poll, anything else through run_until(); *waited says whether it went
 * there. Returns IPCHUB_OK once cond holds (even if the connection died
 * just after), else the code that ended the wait. */
static int wait_msg(ipchub *h, int timeout_ms, cond_fn cond, bool *waited)
{
	int rc = IPCHUB_OK;

	*waited = false;
	if (dead(h))
		return h->s.dead;
	if (h->s.split.n)
		(void)dispatch(h, cond, true);
	if (!cond(h)) {
		rc = run_until(h, deadline_in(timeout_ms), cond);
		*waited = true;
	}
	return cond(h) ? IPCHUB_OK : rc;
}

int ipchub_recv(ipchub *h, int timeout_ms, ipchub_msg **out)
{
	bool waited = false;
	int rc;

	if (!h || !out)
		return IPCHUB_E_INVALID;
	lend_release(h);
	if (!h->qhead) {
		rc = wait_msg(h, timeout_ms, c_have_msg, &waited);
		if (rc)
			return rc;
	}
	/* Replies to earlier requests should not wait for the queue to
	 * drain: push them out without blocking. */
	if (!waited && !dead(h))
		(void)do_write(h);
	*out = q_pop(h);
	return IPCHUB_OK;
}

int ipchub_recv_lent(ipchub *h, int timeout_ms, const ipchub_msg **out)
{
	bool waited = false;
	int rc;

	if (!h || !out)
		return IPCHUB_E_INVALID;
	lend_release(h);
	if (!h->qhead) {
		h->s.lend.slot = &h->lent_slot;
		rc = wait_msg(h, timeout_ms, c_have_lent, &waited);
		h->s.lend.slot = NULL;
		if (rc)
			return rc;
	}
	if (!h->lent) {
		/* Queued earlier (during a call, or an error): lent from the
		 * FIFO, freed at the next call. */
		h->lent = q_pop(h);
		h->lent->lent = true;
	}
	if (!waited && !dead(h))
		(void)do_write(h); /* as ipchub_recv(): push replies out */
	*out = h->lent;
	return IPCHUB_OK;
}

/* ---- publish / subscribe, presence, monitor -------------------------- */

/* Send a frame answered by OK (or ERROR) and wait; *id_out gets its id. */
static int ok_call(ipchub *h, struct frame_hdr *f, int timeout_ms,
		   uint64_t *id_out)
{
	int rc;

	f->id = sess_next_id(&h->s);
	f->has |= FH(WK_ID);
	rc = call(h, f, NULL, 0, WAIT_OK, deadline_in(timeout_ms), NULL, NULL);
	if (rc == IPCHUB_OK && id_out)
		*id_out = f->id;
	return rc;
}

int ipchub_subscribe(ipchub *h, const char *pattern, int policy,
		     int timeout_ms, uint64_t *sub)
{
	struct frame_hdr f;
	size_t len;
	int rc = check_live(h);

	if (rc)
		return rc;
	if (!pattern || policy < 0 || policy >= WIRE_POLICY_MAX_)
		return IPCHUB_E_INVALID;
	len = strnlen(pattern, IPCHUB_MAX_NAME + 1);
	if (len > IPCHUB_MAX_NAME)
		return IPCHUB_E_BAD_NAME;
	frame_init(&f, WIRE_SUBSCRIBE);
	frame_set_str(&f, WK_TOPIC, pattern, len);
	if (policy != WIRE_POLICY_DROP_OLDEST) {
		f.policy = (uint32_t)policy;
		f.has |= FH(WK_POLICY);
	}
	return ok_call(h, &f, timeout_ms, sub);
}

static int un_call(ipchub *h, enum wire_kind kind, uint64_t sub,
		   int timeout_ms)
{
	struct frame_hdr f;
	int rc = check_live(h);

	if (rc)
		return rc;
	frame_init(&f, kind);
	f.sub = sub;
	f.has |= FH(WK_SUB);
	return ok_call(h, &f, timeout_ms, NULL);
}

int ipchub_unsubscribe(ipchub *h, uint64_t sub, int timeout_ms)
{
	return un_call(h, WIRE_UNSUBSCRIBE, sub, timeout_ms);
}

int ipchub_unwatch(ipchub *h, uint64_t watch, int timeout_ms)
{
	return un_call(h, WIRE_UNWATCH, watch, timeout_ms);
}

int ipchub_publish(ipchub *h, const char *topic, const void *body,
		   size_t len)
{
	return one_way(h, WIRE_PUBLISH, WK_TOPIC, topic, body, len, NULL, 0,
		       NULL);
}

int ipchub_watch(ipchub *h, const char *name, int timeout_ms,
		 uint64_t *watch)
{
	struct frame_hdr f;
	size_t len;
	int rc = check_live(h);

	if (rc)
		return rc;
	rc = check_addr(name, &len);
	if (rc)
		return rc;
	frame_init(&f, WIRE_WATCH);
	f.id = sess_next_id(&h->s);
	f.has |= FH(WK_ID);
	frame_set_str(&f, WK_NAME, name, len);
	rc = call(h, &f, NULL, 0, WAIT_PRESENCE, deadline_in(timeout_ms), NULL,
		  NULL);
	if (rc == IPCHUB_OK && watch)
		*watch = f.id;
	return rc;
}

int ipchub_monitor(ipchub *h, const char *filter, int timeout_ms,
		   uint64_t *tap)
{
	struct frame_hdr f;
	int rc = check_live(h);

	if (rc)
		return rc;
	frame_init(&f, WIRE_MONITOR);
	if (filter && *filter) {
		size_t len = strnlen(filter, IPCHUB_MAX_FILTER + 1);

		if (len > IPCHUB_MAX_FILTER)
			return IPCHUB_E_BAD_FILTER;
		frame_set_str(&f, WK_FILTER, filter, len);
	}
	return ok_call(h, &f, timeout_ms, tap);
}
