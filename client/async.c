/*
 * async.c - the event-driven client API (ipchub.h, "Event-driven API") on
 * top of the session state machine (sess.c), without any event library.
 *
 * Model. A handle owns at most one non-blocking socket and one session
 * (which owns the inbound and outbound byte buffers), plus:
 * - the outbound stream: the session's outbound buffer while a connection
 *   is past WELCOME, else the park buffer (frames queued while there is
 *   none). Each encoded frame in either buffer has a record (kind, id,
 *   length; for a batched SEND, how many messages follow the first) in a
 *   FIFO parallel to the bytes; head_done counts bytes of the
 *   head frame already written. So when a connection is lost, the frames
 *   never handed to the kernel are known exactly and move to the park (in
 *   order, ahead of what was parked already); the one cut mid-write is
 *   lost, and frames that do not belong on another connection (HELLO,
 *   BYE, REPLY, restore replays) are dropped; a batch moves as single
 *   SENDs (the next broker may not take batches), and the park never
 *   batches. On the next WELCOME the
 *   restore list is replayed first, then the park is appended, so the
 *   broker sees names before the messages that depend on them.
 * - pending entries, one per frame awaiting an answer (REQUEST, name
 *   operations, restore replays), in a hash table by id (ids come from a
 *   handle-wide counter, so they never repeat across connections) and a
 *   min-heap by local deadline. Every path that ends an entry removes it
 *   from both before its callback runs, so each callback runs once.
 * - the restore list (async.h): names, subscriptions and watches, with
 *   the translation of subscription/watch ids from the current
 *   connection's (wire_id) to the application's (app_id). remapped stays
 *   false until a first replay gives some record a wire_id different from
 *   its app_id, so deliveries skip the lookup until then.
 * - one state timer (timer_at): reconnection backoff, handshake deadline
 *   or close linger, depending on the state.
 *
 * Re-entrancy: every public entry point that can run callbacks brackets
 * its work with enter()/leave(). Callbacks may call the API; a free
 * requested inside is deferred to the outermost leave(), which also calls
 * the watch once. Lists are detached before their callbacks run, so a
 * callback that adds entries never disturbs an iteration.
 *
 * Threads: the creating thread owns the handle; other threads get
 * IPCHUB_E_WRONG_THREAD. The library never logs and keeps no global
 * state.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "async.h"
#include "batch.h"
#include "frame.h"
#include "hdr.h"
#include "ipchub.h"
#include "limits.h"
#include "msg.h"
#include "name.h"
#include "sess.h"
#include "xport.h"

enum st {
	ST_WAIT = 0,  /* no socket; timer_at: next connection attempt */
	ST_HANDSHAKE, /* socket up (or connecting), HELLO queued */
	ST_RESTORING, /* WELCOME in, restore replays unanswered */
	ST_OPEN,
	ST_CLOSING,   /* BYE queued; close once written */
	ST_CLOSED
};

/* Record of one encoded frame in the outbound stream. */
struct orec {
	uint64_t id;
	uint32_t len; /* prefix + header + body */
	uint8_t kind;
	uint8_t restore; /* a restore replay: never moved to the park */
	uint32_t more;   /* batched SEND: messages after the first (ids
	                  * id + 1 ..), 0 otherwise */
};

struct orecq {
	struct orec *v;
	size_t head, n, cap; /* ring; cap is 0 or a power of two */
};

enum ptype { P_REQUEST, P_OP, P_RESTORE };

struct pend {
	uint64_t id;
	uint8_t type;       /* enum ptype */
	uint8_t frame_kind; /* what the broker's ERROR ref names */
	bool keep;          /* scratch for conn_lost() */
	int64_t deadline;   /* ns, monotonic */
	size_t hidx;
	ipchub_async_reply_fn rcb;
	ipchub_async_done_fn dcb;
	void *ud;
	enum async_rec_action action;
	struct async_rec *rec; /* P_OP with an action, P_RESTORE: owned */
	struct pend *next;     /* detached lists */
};

struct rnode {
	struct rnode *next;
	struct async_rec r;
};

struct ipchub_async {
	pthread_t owner;
	struct ipchub_async_callbacks cb;
	void *ud;
	ipchub_async_watch_fn watch;
	void *watch_ctx;

	char path[XPORT_PATH_MAX];
	char agent[IPCHUB_MAX_AGENT + 1];
	int timeout_ms;
	size_t hwm;
	unsigned flags;

	enum st st;
	xport_sock fd;
	bool connecting; /* connect() in progress: wait for POLLOUT */
	bool eof;
	struct sess s;
	struct orecq recs;
	size_t head_done;
	struct sess_buf park;
	struct orecq park_recs;
	uint32_t max_frame; /* last WELCOME's, for encoding into the park */
	uint64_t epoch;     /* connection counter, stamped on messages */
	uint64_t next_id;

	bool ever_up;
	bool in_outage;
	int64_t outage_start;
	int64_t timer_at;
	unsigned attempt;
	uint64_t rng;
	int closed_code;

	struct rnode *rhead;
	bool remapped;
	unsigned restore_left, restore_ok;
	struct ipchub_async_lost *lost;
	size_t n_lost, cap_lost;

	struct pend **slot; /* hash by id, linear probing */
	size_t slot_cap, n_pend;
	struct pend **heap;
	size_t heap_cap;

	bool need_drain;
	int depth;
	bool free_pending;
	bool freeing;
};

static void really_free(ipchub_async *a);

/* ---- time, randomness ------------------------------------------------ */

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t ms_ns(int64_t ms) { return ms * 1000000; }

static uint64_t rng_next(ipchub_async *a)
{
	/* xorshift64*: jitter only, no security use. */
	a->rng ^= a->rng >> 12;
	a->rng ^= a->rng << 25;
	a->rng ^= a->rng >> 27;
	return a->rng * UINT64_C(2685821657736338717);
}

/* ---- record FIFOs ---------------------------------------------------- */

static int orecq_reserve(struct orecq *q)
{
	struct orec *v;
	size_t ncap;

	if (q->n < q->cap)
		return 0;
	ncap = q->cap ? q->cap * 2 : 64;
	v = malloc(ncap * sizeof(*v));
	if (!v)
		return IPCHUB_E_NOMEM;
	for (size_t i = 0; i < q->n; i++)
		v[i] = q->v[(q->head + i) & (q->cap - 1)];
	free(q->v);
	q->v = v;
	q->head = 0;
	q->cap = ncap;
	return 0;
}

/* Only after a successful orecq_reserve(). */
static void orecq_push(struct orecq *q, struct orec r)
{
	q->v[(q->head + q->n) & (q->cap - 1)] = r;
	q->n++;
}

static struct orec *orecq_front(struct orecq *q)
{
	return q->n ? &q->v[q->head] : NULL;
}

static struct orec *orecq_back(struct orecq *q)
{
	return q->n ? &q->v[(q->head + q->n - 1) & (q->cap - 1)] : NULL;
}

static struct orec orecq_pop(struct orecq *q)
{
	struct orec r = q->v[q->head];

	q->head = (q->head + 1) & (q->cap - 1);
	q->n--;
	return r;
}

static void orecq_free(struct orecq *q)
{
	free(q->v);
	*q = (struct orecq){0};
}

/* ---- pending entries: hash by id + heap by deadline ------------------ */

static size_t slot_of(uint64_t id, size_t cap)
{
	return (size_t)((id * UINT64_C(0x9E3779B97F4A7C15)) >> 32) & (cap - 1);
}

static struct pend *pend_find(const ipchub_async *a, uint64_t id)
{
	if (!a->slot_cap)
		return NULL;
	for (size_t i = slot_of(id, a->slot_cap);; i = (i + 1) & (a->slot_cap - 1)) {
		if (!a->slot[i])
			return NULL;
		if (a->slot[i]->id == id)
			return a->slot[i];
	}
}

static void slot_put(struct pend **slot, size_t cap, struct pend *p)
{
	size_t i = slot_of(p->id, cap);

	while (slot[i])
		i = (i + 1) & (cap - 1);
	slot[i] = p;
}

static void heap_swap(struct pend **h, size_t i, size_t j)
{
	struct pend *t = h[i];

	h[i] = h[j];
	h[j] = t;
	h[i]->hidx = i;
	h[j]->hidx = j;
}

static void heap_up(struct pend **h, size_t i)
{
	while (i > 0 && h[(i - 1) / 2]->deadline > h[i]->deadline) {
		heap_swap(h, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void heap_down(struct pend **h, size_t n, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < n && h[l]->deadline < h[m]->deadline)
			m = l;
		if (r < n && h[r]->deadline < h[m]->deadline)
			m = r;
		if (m == i)
			return;
		heap_swap(h, i, m);
		i = m;
	}
}

/* Make room for one more entry in both structures. */
static int pend_reserve(ipchub_async *a)
{
	if ((a->n_pend + 1) * 2 > a->slot_cap) {
		size_t ncap = a->slot_cap ? a->slot_cap * 2 : 64;
		struct pend **ns = calloc(ncap, sizeof(*ns));

		if (!ns)
			return IPCHUB_E_NOMEM;
		for (size_t i = 0; i < a->slot_cap; i++)
			if (a->slot[i])
				slot_put(ns, ncap, a->slot[i]);
		free(a->slot);
		a->slot = ns;
		a->slot_cap = ncap;
	}
	if (a->n_pend + 1 > a->heap_cap) {
		size_t ncap = a->heap_cap ? a->heap_cap * 2 : 64;
		struct pend **nh = realloc(a->heap, ncap * sizeof(*nh));

		if (!nh)
			return IPCHUB_E_NOMEM;
		a->heap = nh;
		a->heap_cap = ncap;
	}
	return 0;
}

/* Only after a successful pend_reserve(). */
static void pend_insert(ipchub_async *a, struct pend *p)
{
	slot_put(a->slot, a->slot_cap, p);
	p->hidx = a->n_pend;
	a->heap[a->n_pend++] = p;
	heap_up(a->heap, p->hidx);
}

static void pend_remove(ipchub_async *a, struct pend *p)
{
	size_t mask = a->slot_cap - 1, i = slot_of(p->id, a->slot_cap), j;

	while (a->slot[i] != p)
		i = (i + 1) & mask;
	a->slot[i] = NULL;
	/* Backward-shift deletion keeps every probe chain unbroken. */
	for (j = (i + 1) & mask; a->slot[j]; j = (j + 1) & mask) {
		size_t k = slot_of(a->slot[j]->id, a->slot_cap);
		bool stays = (i <= j) ? (i < k && k <= j) : (i < k || k <= j);

		if (!stays) {
			a->slot[i] = a->slot[j];
			a->slot[j] = NULL;
			i = j;
		}
	}
	i = p->hidx;
	a->n_pend--;
	if (i != a->n_pend) {
		a->heap[i] = a->heap[a->n_pend];
		a->heap[i]->hidx = i;
		heap_down(a->heap, a->n_pend, i);
		heap_up(a->heap, i);
	}
}

static void pend_free(struct pend *p)
{
	if (p) {
		free(p->rec);
		free(p);
	}
}

/* ---- restore list ---------------------------------------------------- */

static bool rec_equal(const struct async_rec *x, const struct async_rec *y)
{
	if (x->app_id || y->app_id)
		return x->kind == y->kind && x->app_id == y->app_id;
	return x->kind == y->kind && x->skey == y->skey && x->len == y->len &&
	       memcmp(x->str, y->str, x->len) == 0;
}

static struct async_rec *rec_by_app(ipchub_async *a, uint8_t kind,
				    uint64_t app_id)
{
	for (struct rnode *n = a->rhead; n; n = n->next)
		if (n->r.kind == kind && n->r.app_id == app_id && app_id)
			return &n->r;
	return NULL;
}

static struct async_rec *rec_find(ipchub_async *a, const struct async_rec *r)
{
	for (struct rnode *n = a->rhead; n; n = n->next)
		if (rec_equal(&n->r, r))
			return &n->r;
	return NULL;
}

/* The application's id of a subscription or watch the broker named by
 * its id on this connection. An id no record has (e.g. a subscription
 * whose SUBSCRIBE was never replayed) is its own. */
static uint64_t app_id_of(const ipchub_async *a, uint8_t kind, uint64_t wire)
{
	if (!a->remapped)
		return wire;
	for (const struct rnode *n = a->rhead; n; n = n->next)
		if (n->r.kind == kind && n->r.app_id && n->r.wire_id == wire)
			return n->r.app_id;
	return wire;
}

int async_restore_add(ipchub_async *a, const struct async_rec *r)
{
	struct rnode **pp = &a->rhead, *n;

	for (; *pp; pp = &(*pp)->next)
		if (rec_equal(&(*pp)->r, r))
			return IPCHUB_OK;
	n = calloc(1, sizeof(*n));
	if (!n)
		return IPCHUB_E_NOMEM;
	n->r = *r;
	*pp = n;
	return IPCHUB_OK;
}

int async_restore_remove(ipchub_async *a, const struct async_rec *r)
{
	for (struct rnode **pp = &a->rhead; *pp; pp = &(*pp)->next) {
		if (rec_equal(&(*pp)->r, r)) {
			struct rnode *n = *pp;

			*pp = n->next;
			free(n);
			return 1;
		}
	}
	return 0;
}

/* The frame a record stands for, with id. */
static void rec_frame(struct frame_hdr *f, uint8_t kind,
		      const struct async_rec *r, uint64_t id)
{
	frame_init(f, kind);
	f->id = id;
	f->has |= FH(WK_ID);
	frame_set_str(f, r->skey, r->str, r->len);
	switch (r->nkey) {
	case WK_POLICY:
		f->policy = r->num;
		f->has |= FH(WK_POLICY);
		break;
	case WK_FLAGS:
		f->flags = r->num;
		f->has |= FH(WK_FLAGS);
		break;
	default:
		break;
	}
}

/* ---- entering and leaving ------------------------------------------- */

static bool owner(const ipchub_async *a)
{
	return pthread_equal(pthread_self(), a->owner);
}

static void enter(ipchub_async *a) { a->depth++; }

/* May free a: callers return right after. */
static void leave(ipchub_async *a)
{
	if (--a->depth > 0)
		return;
	if (a->free_pending) {
		really_free(a);
		return;
	}
	if (a->watch)
		a->watch(a, IPCHUB_ASYNC_WATCH_UPDATE, a->watch_ctx);
}

static void fire_state(ipchub_async *a, struct ipchub_async_event *e)
{
	if (a->cb.on_state)
		a->cb.on_state(a, e, a->ud);
}

static void fire_error(ipchub_async *a, int code, uint64_t id, int kind,
		       const char *to, const char *text)
{
	struct ipchub_async_error e = {.code = code, .id = id, .kind = kind,
				       .to = to, .text = text};

	if (a->cb.on_error)
		a->cb.on_error(a, &e, a->ud);
}

/* End an entry already removed from the tables: run its callback, apply
 * its restore action on success, free it. m goes to a reply callback. */
static void settle(ipchub_async *a, struct pend *p, int code, ipchub_msg *m)
{
	switch (p->type) {
	case P_REQUEST:
		p->rcb(a, code, m, p->ud);
		m = NULL;
		break;
	case P_OP:
		if (p->rec && p->rec->app_id && p->action == ASYNC_REC_REMOVE) {
			/* NO_SUCH_REQUEST: the broker no longer has it (its
			 * removal was parked across a reconnection, and the
			 * record was not replayed). Any other failure leaves
			 * it live, so it is replayed again. */
			struct async_rec *r = rec_find(a, p->rec);

			if (code == IPCHUB_E_NO_SUCH_REQUEST && r && r->removing)
				code = IPCHUB_OK;
			if (code != IPCHUB_OK && r)
				r->removing = false;
		}
		if (code == IPCHUB_OK && p->rec) {
			if (p->action == ASYNC_REC_ADD &&
			    async_restore_add(a, p->rec) != IPCHUB_OK)
				code = IPCHUB_E_NOMEM;
			else if (p->action == ASYNC_REC_REMOVE)
				(void)async_restore_remove(a, p->rec);
		}
		if (p->dcb)
			p->dcb(a, code, p->ud);
		break;
	case P_RESTORE:
		break;
	}
	ipchub_msg_free(m);
	pend_free(p);
}

/* ---- the outbound stream -------------------------------------------- */

static bool direct(const ipchub_async *a)
{
	return a->st == ST_RESTORING || a->st == ST_OPEN || a->st == ST_CLOSING;
}

static size_t backlog(const ipchub_async *a)
{
	return sess_out_len(&a->s) + (a->park.len - a->park.off);
}

static uint32_t out_limit(const ipchub_async *a)
{
	return direct(a) ? a->s.max_frame : a->max_frame;
}

/* Append one frame to the stream. control frames ignore the high-water
 * mark; others are refused (IPCHUB_E_WOULD_BLOCK, nothing queued) when
 * they would take a non-empty backlog over it. */
static int enqueue(ipchub_async *a, const struct frame_hdr *f,
		   const void *body, size_t len, bool control, bool restore)
{
	bool d = direct(a);
	struct sess_buf *b = d ? &a->s.out : &a->park;
	struct orecq *q = d ? &a->recs : &a->park_recs;
	size_t bl = backlog(a), before = b->len - b->off, n;
	int rc;

	/* A SEND joins the one still waiting at the tail of the session's
	 * buffer when it can (batch.h); never in the park, whose frames may
	 * go to a broker that does not take batches. */
	if (d && f->kind == WIRE_SEND && !control && orecq_back(q) &&
	    (n = sess_batch_cost(&a->s, WIRE_SEND, f->to, f->to_len,
				 (f->has & FH(WK_FLAGS)) ? f->flags : 0,
				 f->id, len)) > 0) {
		struct orec *last = orecq_back(q);

		if (bl > 0 && bl + n > a->hwm) {
			a->need_drain = true;
			return IPCHUB_E_WOULD_BLOCK;
		}
		rc = sess_batch_add(&a->s, n, body, len);
		if (rc)
			return rc;
		last->len += (uint32_t)n;
		last->more++;
		return IPCHUB_OK;
	}
	if (orecq_reserve(q))
		return IPCHUB_E_NOMEM;
	rc = sess_buf_encode(b, f, body, len, out_limit(a));
	if (rc)
		return rc;
	n = (b->len - b->off) - before;
	if (!control && bl > 0 && bl + n > a->hwm) {
		b->len -= n;
		a->need_drain = true;
		return IPCHUB_E_WOULD_BLOCK;
	}
	orecq_push(q, (struct orec){.id = f->id, .len = (uint32_t)n,
				    .kind = f->kind, .restore = restore});
	if (d && f->kind == WIRE_SEND && !control)
		sess_batch_open(&a->s, f, len, n);
	return IPCHUB_OK;
}

/* Account for n bytes written from the session's outbound buffer. */
static void recs_advance(ipchub_async *a, size_t n)
{
	a->head_done += n;
	for (;;) {
		struct orec *r = orecq_front(&a->recs);

		if (!r || a->head_done < r->len)
			return;
		a->head_done -= r->len;
		(void)orecq_pop(&a->recs);
	}
}

/* ---- losing and finishing ------------------------------------------- */

static bool kept_on_loss(const struct orec *r)
{
	if (r->restore)
		return false;
	switch (r->kind) {
	case WIRE_HELLO:
	case WIRE_BYE:
	case WIRE_REPLY: /* its requester was told PEER_GONE */
		return false;
	default:
		return true;
	}
}

static void close_socket(ipchub_async *a)
{
	xport_close(a->fd);
	a->fd = XPORT_NONE;
	a->connecting = false;
	a->eof = false;
}

/* Detach every pending entry into a list. */
static struct pend *pend_take_all(ipchub_async *a)
{
	struct pend *list = NULL;

	while (a->n_pend) {
		struct pend *p = a->heap[a->n_pend - 1];

		pend_remove(a, p);
		p->next = list;
		list = p;
	}
	return list;
}

/* The public kind under which a lost frame of ours is reported to
 * on_error: SEND and PUBLISH have no other way to fail; 0: not reported
 * there (requests and operations fail through their callbacks). */
static int reported_kind(uint8_t wire_kind)
{
	switch (wire_kind) {
	case WIRE_SEND:
		return IPCHUB_KIND_SEND;
	case WIRE_PUBLISH:
		return IPCHUB_KIND_PUBLISH;
	default:
		return 0;
	}
}

/* Collect the records of SEND and PUBLISH frames in a record FIFO (for
 * reporting). */
static int collect_sends(struct orecq *q, struct orec **recs, size_t *n)
{
	size_t cnt = 0;
	struct orec *v;

	for (size_t i = 0; i < q->n; i++)
		if (reported_kind(q->v[(q->head + i) & (q->cap - 1)].kind))
			cnt++;
	*n = 0;
	*recs = NULL;
	if (!cnt)
		return 0;
	v = malloc(cnt * sizeof(*v));
	if (!v)
		return IPCHUB_E_NOMEM; /* reporting is lost, memory is not */
	for (size_t i = 0; i < q->n; i++) {
		struct orec *r = &q->v[(q->head + i) & (q->cap - 1)];

		if (reported_kind(r->kind))
			v[(*n)++] = *r;
	}
	*recs = v;
	return 0;
}

/* The end: everything still waiting fails, unsent SENDs are reported,
 * CLOSED is announced. */
static void finish(ipchub_async *a, int code)
{
	struct ipchub_async_event ev = {.state = IPCHUB_ASYNC_CLOSED,
					.code = code};
	int pcode = (code == IPCHUB_OK || code == IPCHUB_E_IO) ? IPCHUB_E_CLOSED
							      : code;
	struct orec *ids1, *ids2;
	size_t n1, n2;
	struct pend *list;

	if (a->st == ST_CLOSED)
		return;
	a->st = ST_CLOSED;
	a->closed_code = code;
	a->timer_at = INT64_MAX;
	close_socket(a);
	(void)collect_sends(&a->recs, &ids1, &n1);
	(void)collect_sends(&a->park_recs, &ids2, &n2);
	sess_destroy(&a->s);
	sess_init(&a->s);
	sess_kill(&a->s, IPCHUB_E_CLOSED);
	sess_buf_free(&a->park);
	orecq_free(&a->recs);
	orecq_free(&a->park_recs);
	a->head_done = 0;
	a->need_drain = false;
	a->epoch++;
	list = pend_take_all(a);

	while (list) {
		struct pend *p = list;

		list = p->next;
		settle(a, p, pcode, NULL);
	}
	for (size_t i = 0; i < n1; i++)
		for (uint64_t k = 0; k <= ids1[i].more; k++)
			fire_error(a, IPCHUB_E_CLOSED, ids1[i].id + k,
				   reported_kind(ids1[i].kind), NULL,
				   "the handle closed before the message was sent");
	for (size_t i = 0; i < n2; i++)
		fire_error(a, IPCHUB_E_CLOSED, ids2[i].id,
			   reported_kind(ids2[i].kind), NULL,
			   "the handle closed before the message was sent");
	free(ids1);
	free(ids2);
	fire_state(a, &ev);
}

static void schedule_retry(ipchub_async *a)
{
	unsigned shift = a->attempt < 16 ? a->attempt : 16;
	int64_t delay = (int64_t)IPCHUB_CLIENT_RECONNECT_MIN_MS << shift;

	if (delay > IPCHUB_CLIENT_RECONNECT_MAX_MS)
		delay = IPCHUB_CLIENT_RECONNECT_MAX_MS;
	a->attempt++;
	a->st = ST_WAIT;
	a->timer_at = now_ns() + (int64_t)(rng_next(a) % (uint64_t)(ms_ns(delay) + 1));
}

static bool is_fatal(int code)
{
	return code > 0 && code < IPCHUB_E_IO && frame_code_is_fatal(code);
}

/* Re-encode the batched SEND frame[0..len) as single SENDs at the end of
 * the new park nb/nq: the next broker may not take batches. Like a frame
 * that cannot be kept, a message that cannot be copied for lack of memory
 * is dropped. */
static void park_split(struct sess_buf *nb, struct orecq *nq,
		       const uint8_t *frame, size_t len)
{
	struct batch_iter *it = malloc(sizeof(*it));
	const uint8_t *body;
	size_t blen;

	if (!it || batch_iter_init(it, frame, len) != IPCHUB_OK) {
		free(it);
		return;
	}
	while (batch_iter_next(it, &body, &blen)) {
		size_t before = nb->len - nb->off;

		if (orecq_reserve(nq) == 0 &&
		    sess_buf_encode(nb, &it->h, body, blen,
				    IPCHUB_MAX_FRAME_MAX) == IPCHUB_OK)
			orecq_push(nq, (struct orec){
				.id = it->h.id, .kind = WIRE_SEND,
				.len = (uint32_t)(nb->len - nb->off - before)});
	}
	free(it);
}

/* The connection is gone (code says why). Keeps what was never written,
 * fails what was, then reconnects or finishes. */
static void conn_lost(ipchub_async *a, int code)
{
	struct sess_buf nb = {0};
	struct orecq nq = {0};
	struct pend *list = NULL, *p;
	int cut_kind = 0;
	uint64_t cut_id = 0, cut_more = 0;
	const uint8_t *data;
	size_t len, off = 0;
	bool was_up = a->st == ST_RESTORING || a->st == ST_OPEN;
	bool closing = a->st == ST_CLOSING;

	if (a->st == ST_CLOSED || a->st == ST_WAIT)
		return;
	close_socket(a);
	data = sess_out_data(&a->s, &len);
	if (a->recs.n && a->head_done > 0) {
		struct orec r = orecq_pop(&a->recs);

		off = r.len - a->head_done;
		cut_kind = reported_kind(r.kind);
		cut_id = r.id;
		cut_more = r.more;
	}
	a->head_done = 0;
	/* Untouched frames, then the old park: the new park, in order. On
	 * allocation failure a frame is dropped like one that was written
	 * (its request fails with IO below). */
	while (a->recs.n) {
		struct orec r = orecq_pop(&a->recs);

		if (r.more)
			park_split(&nb, &nq, data + off, r.len);
		else if (kept_on_loss(&r) && orecq_reserve(&nq) == 0 &&
			 sess_buf_append(&nb, data + off, r.len) == 0)
			orecq_push(&nq, r);
		off += r.len;
	}
	data = a->park.data + a->park.off;
	off = 0;
	while (a->park_recs.n) {
		struct orec r = orecq_pop(&a->park_recs);

		if (orecq_reserve(&nq) == 0 &&
		    sess_buf_append(&nb, data + off, r.len) == 0)
			orecq_push(&nq, r);
		off += r.len;
	}
	sess_buf_free(&a->park);
	orecq_free(&a->park_recs);
	a->park = nb;
	a->park_recs = nq;
	sess_destroy(&a->s);
	sess_init(&a->s);
	a->epoch++;

	/* Entries whose frames are still queued stay; the rest were written
	 * on the lost connection (or are restore replays) and end now. */
	for (size_t i = 0; i < a->n_pend; i++)
		a->heap[i]->keep = false;
	for (size_t i = 0; i < nq.n; i++) {
		p = pend_find(a, nq.v[(nq.head + i) & (nq.cap - 1)].id);
		if (p)
			p->keep = true;
	}
	for (size_t i = 0; i < a->n_pend; i++) {
		if (!a->heap[i]->keep) {
			a->heap[i]->next = list;
			list = a->heap[i];
		}
	}
	for (p = list; p; p = p->next)
		pend_remove(a, p);
	a->restore_left = a->restore_ok = 0;

	if (closing) {
		a->st = ST_WAIT;
		while (list) {
			p = list;
			list = p->next;
			settle(a, p, IPCHUB_E_CLOSED, NULL);
		}
		finish(a, IPCHUB_OK);
		return;
	}
	if (is_fatal(code) || (a->flags & IPCHUB_ASYNC_NO_RECONNECT)) {
		a->st = ST_WAIT;
		while (list) {
			p = list;
			list = p->next;
			settle(a, p, IPCHUB_E_IO, NULL);
		}
		finish(a, code);
		return;
	}
	schedule_retry(a);
	while (list) {
		p = list;
		list = p->next;
		settle(a, p, IPCHUB_E_IO, NULL);
	}
	for (uint64_t k = 0; cut_kind && k <= cut_more; k++)
		fire_error(a, IPCHUB_E_IO, cut_id + k, cut_kind, NULL,
			   "the connection was lost while the message was being written");
	if (was_up && !a->in_outage) {
		struct ipchub_async_event ev = {
			.state = IPCHUB_ASYNC_DISCONNECTED, .code = code};

		/* One DISCONNECTED per outage, even if the connection drops
		 * again while the names are being restored. */
		a->in_outage = true;
		a->outage_start = now_ns();
		fire_state(a, &ev);
	}
}

/* ---- connecting ------------------------------------------------------ */

static int map_errno(int err)
{
	switch (err) {
	case ENOENT:
	case ECONNREFUSED:
	case ENOTDIR:
	case EAGAIN: /* listen backlog full: try again later */
		return IPCHUB_E_NO_BROKER;
	case ENOMEM:
	case ENOBUFS:
		return IPCHUB_E_NOMEM;
	case EPIPE:
	case ECONNRESET:
		return IPCHUB_E_CLOSED;
	default:
		return IPCHUB_E_IO;
	}
}

/* One connection attempt. On success the state is ST_HANDSHAKE with
 * HELLO queued; on failure the socket is closed and the code returned. */
static int try_connect(ipchub_async *a)
{
	int rc, r = xport_connect(a->path, &a->fd);

	if (r == -EINVAL || r == -ENAMETOOLONG)
		return IPCHUB_E_INVALID;
	if (r == -EINPROGRESS) {
		a->connecting = true;
	} else if (r < 0) {
		a->fd = XPORT_NONE;
		return map_errno(-r);
	}
	sess_destroy(&a->s);
	sess_init(&a->s);
	if (orecq_reserve(&a->recs) ||
	    (rc = sess_queue_hello(&a->s, a->agent)) != IPCHUB_OK) {
		close_socket(a);
		return IPCHUB_E_NOMEM;
	}
	orecq_push(&a->recs, (struct orec){.kind = WIRE_HELLO,
					   .len = (uint32_t)sess_out_len(&a->s)});
	a->head_done = 0;
	a->st = ST_HANDSHAKE;
	a->timer_at = now_ns() + ms_ns(a->timeout_ms);
	return IPCHUB_OK;
}

/* Move the park behind what the session has queued. Frames over the new
 * broker's maximum fail (TOO_LARGE) instead of killing the connection;
 * their ids are returned for reporting after the move. */
static int merge_park(ipchub_async *a, struct orec **big, size_t *nbig)
{
	const uint8_t *data = a->park.data + a->park.off;
	size_t off = 0;

	*big = NULL;
	*nbig = 0;
	while (a->park_recs.n) {
		struct orec *r = orecq_front(&a->park_recs);

		if (r->len - IPCHUB_LEN_PREFIX > a->s.max_frame) {
			struct orec *nb = realloc(*big, (*nbig + 1) * sizeof(**big));

			if (!nb)
				return IPCHUB_E_NOMEM;
			*big = nb;
			nb[(*nbig)++] = *r;
		} else {
			if (orecq_reserve(&a->recs) ||
			    sess_buf_append(&a->s.out, data + off, r->len))
				return IPCHUB_E_NOMEM;
			orecq_push(&a->recs, *r);
		}
		off += r->len;
		a->park.off += r->len;
		(void)orecq_pop(&a->park_recs);
	}
	sess_buf_free(&a->park);
	return 0;
}

static void finish_restore(ipchub_async *a)
{
	struct ipchub_async_event ev = {.state = IPCHUB_ASYNC_RECONNECTED};

	a->st = ST_OPEN;
	ev.gap_ms = a->in_outage ? (uint64_t)(now_ns() - a->outage_start) / 1000000 : 0;
	ev.restored = a->restore_ok;
	ev.n_lost = a->n_lost;
	ev.lost = a->lost;
	a->in_outage = false;
	fire_state(a, &ev);
	for (size_t i = 0; i < a->n_lost; i++)
		free((char *)a->lost[i].name);
	a->n_lost = 0;
}

static void on_welcome(ipchub_async *a)
{
	struct orec *big = NULL;
	size_t nbig = 0;
	int rc;

	a->max_frame = a->s.max_frame;
	a->attempt = 0;
	a->timer_at = INT64_MAX;
	a->restore_left = a->restore_ok = 0;
	a->st = ST_RESTORING;
	for (struct rnode *n = a->rhead; n; n = n->next) {
		struct frame_hdr f;
		struct pend *p;

		if (n->r.removing)
			continue; /* its parked removal follows: gone either way */
		p = calloc(1, sizeof(*p));
		if (!p || pend_reserve(a) ||
		    !(p->rec = malloc(sizeof(*p->rec)))) {
			pend_free(p);
			conn_lost(a, IPCHUB_E_NOMEM);
			return;
		}
		*p->rec = n->r;
		p->id = a->next_id++;
		p->type = P_RESTORE;
		p->frame_kind = n->r.kind;
		p->deadline = now_ns() + ms_ns(a->timeout_ms);
		rec_frame(&f, n->r.kind, &n->r, p->id);
		rc = enqueue(a, &f, NULL, 0, true, true);
		if (rc) {
			pend_free(p);
			conn_lost(a, rc);
			return;
		}
		pend_insert(a, p);
		a->restore_left++;
		if (n->r.app_id) {
			/* From now on the broker knows it by this id. */
			n->r.wire_id = p->id;
			p->rec->wire_id = p->id;
			a->remapped = true;
		}
	}
	if (merge_park(a, &big, &nbig)) {
		free(big);
		conn_lost(a, IPCHUB_E_NOMEM);
		return;
	}
	if (!a->ever_up) {
		struct ipchub_async_event ev = {.state = IPCHUB_ASYNC_CONNECTED};

		a->ever_up = true;
		a->st = ST_OPEN;
		fire_state(a, &ev);
	} else if (a->restore_left == 0) {
		finish_restore(a);
	}
	for (size_t i = 0; i < nbig; i++) {
		struct pend *p = pend_find(a, big[i].id);

		if (reported_kind(big[i].kind)) {
			fire_error(a, IPCHUB_E_TOO_LARGE, big[i].id,
				   reported_kind(big[i].kind), NULL,
				   "the message exceeds the new broker's maximum frame");
		} else if (p) {
			pend_remove(a, p);
			settle(a, p, IPCHUB_E_TOO_LARGE, NULL);
		}
	}
	free(big);
}

/* ---- inbound --------------------------------------------------------- */

static void restore_answered(ipchub_async *a, struct pend *p, int code)
{
	if (code == IPCHUB_OK) {
		a->restore_ok++;
	} else {
		/* Refused (e.g. NAME_TAKEN): drop it, report it. */
		char *name = strdup(p->rec->str);

		if (a->n_lost == a->cap_lost) {
			size_t ncap = a->cap_lost ? a->cap_lost * 2 : 4;
			struct ipchub_async_lost *nl =
				realloc(a->lost, ncap * sizeof(*nl));

			if (nl) {
				a->lost = nl;
				a->cap_lost = ncap;
			}
		}
		if (name && a->n_lost < a->cap_lost)
			a->lost[a->n_lost++] = (struct ipchub_async_lost){
				.kind = p->rec->kind, .name = name, .code = code};
		else
			free(name);
		(void)async_restore_remove(a, p->rec);
	}
	pend_free(p);
	if (--a->restore_left == 0 && a->st == ST_RESTORING)
		finish_restore(a);
}

/* OK for a name operation or restore replay. */
static void on_ok(ipchub_async *a, uint64_t id)
{
	struct pend *p = pend_find(a, id);

	if (!p || p->type == P_REQUEST)
		return; /* it already ended locally (timed out) */
	pend_remove(a, p);
	if (p->type == P_RESTORE)
		restore_answered(a, p, IPCHUB_OK);
	else
		settle(a, p, IPCHUB_OK, NULL);
}

static void on_error_frame(ipchub_async *a, const struct sess_event *ev)
{
	ipchub_msg *m = ev->msg;
	struct pend *p;

	if (is_fatal(ev->code)) {
		ipchub_msg_free(m);
		conn_lost(a, ev->code);
		return;
	}
	p = pend_find(a, ev->id);
	if (p && (ev->ref == 0 || ev->ref == p->frame_kind)) {
		pend_remove(a, p);
		if (p->type == P_REQUEST) {
			m->epoch = a->epoch;
			settle(a, p, ev->code, m);
			return;
		}
		ipchub_msg_free(m);
		if (p->type == P_RESTORE)
			restore_answered(a, p, ev->code);
		else
			settle(a, p, ev->code, NULL);
		return;
	}
	/* A SEND or REPLY of ours that was not delivered; answers to
	 * requests, operations and CANCELs that already ended are dropped,
	 * and so is the SHUTTING_DOWN notice that precedes BYE. */
	if (ev->ref == WIRE_SEND || ev->ref == WIRE_REPLY ||
	    ev->ref == WIRE_PUBLISH ||
	    (ev->ref == 0 && ev->code != IPCHUB_E_SHUTTING_DOWN))
		fire_error(a, ev->code, ev->id,
			   ev->ref == WIRE_SEND ? IPCHUB_KIND_SEND
			   : ev->ref == WIRE_REPLY ? IPCHUB_KIND_REPLY
			   : ev->ref == WIRE_PUBLISH ? IPCHUB_KIND_PUBLISH : 0,
			   m->to, m->errtext);
	ipchub_msg_free(m);
}

/* A PRESENCE: the first one of a watch answers its WATCH (or its replay)
 * and, like every later one, goes to on_presence. */
static void on_presence(ipchub_async *a, ipchub_msg *m)
{
	struct pend *p = pend_find(a, m->id);
	struct ipchub_async_presence ev;

	if (p && p->type != P_REQUEST && p->frame_kind == WIRE_WATCH) {
		pend_remove(a, p);
		if (p->type == P_RESTORE)
			restore_answered(a, p, IPCHUB_OK);
		else
			settle(a, p, IPCHUB_OK, NULL);
		if (a->free_pending || a->st == ST_CLOSED) {
			ipchub_msg_free(m);
			return;
		}
	}
	ev = (struct ipchub_async_presence){
		.watch = app_id_of(a, WIRE_WATCH, m->id),
		.name = m->name,
		.event = (int)m->event,
		.reason = (int)m->reason,
		.owner = m->conn,
	};
	if (a->cb.on_presence)
		a->cb.on_presence(a, &ev, a->ud);
	ipchub_msg_free(m);
}

static void on_msg(ipchub_async *a, ipchub_msg *m)
{
	struct pend *p;

	m->epoch = a->epoch;
	switch (m->kind) {
	case IPCHUB_KIND_PUBLISH:
		m->sub = app_id_of(a, WIRE_SUBSCRIBE, m->sub);
		if (a->cb.on_message)
			a->cb.on_message(a, m, a->ud);
		else
			ipchub_msg_free(m);
		return;
	case IPCHUB_KIND_GAP:
		if (a->cb.on_gap)
			a->cb.on_gap(a, app_id_of(a, WIRE_SUBSCRIBE, m->sub),
				     m->count, a->ud);
		ipchub_msg_free(m);
		return;
	case IPCHUB_KIND_PRESENCE:
		on_presence(a, m);
		return;
	case IPCHUB_KIND_MONITOR: /* this API opens no taps */
		ipchub_msg_free(m);
		return;
	case IPCHUB_KIND_SEND:
		if (a->cb.on_message)
			a->cb.on_message(a, m, a->ud);
		else
			ipchub_msg_free(m);
		return;
	case IPCHUB_KIND_REQUEST:
		if (a->cb.on_request) {
			a->cb.on_request(a, m, a->ud);
		} else {
			struct frame_hdr f;

			if (hdr_reply(&f, m, IPCHUB_E_REMOTE_ERROR, "no handler") == IPCHUB_OK)
				(void)enqueue(a, &f, NULL, 0, true, false);
			ipchub_msg_free(m);
		}
		return;
	default: /* REPLY */
		p = pend_find(a, m->id);
		if (!p || p->type != P_REQUEST) {
			ipchub_msg_free(m); /* late: cancelled or timed out */
			return;
		}
		pend_remove(a, p);
		settle(a, p, m->code, m);
	}
}

/* Decode and dispatch buffered frames while the connection lasts. */
static void dispatch(ipchub_async *a)
{
	uint64_t epoch = a->epoch;

	while (a->epoch == epoch && a->st != ST_CLOSED && !a->free_pending) {
		struct sess_event ev;
		int rc = sess_next_event(&a->s, &ev);

		if (rc == IPCHUB_E_NOMEM)
			return; /* the frame stays buffered; next call retries */
		if (rc) {
			conn_lost(a, rc);
			return;
		}
		switch (ev.type) {
		case SESS_EV_NONE:
			if (a->eof)
				conn_lost(a, IPCHUB_E_CLOSED);
			return;
		case SESS_EV_WELCOME:
			on_welcome(a);
			break;
		case SESS_EV_OK:
			on_ok(a, ev.id);
			break;
		case SESS_EV_PONG:
			/* This API sends no PING. */
			break;
		case SESS_EV_ERROR:
			on_error_frame(a, &ev);
			break;
		case SESS_EV_MSG:
			on_msg(a, ev.msg);
			break;
		case SESS_EV_BYE:
			/* The session is dead; the next call reports it. */
			break;
		}
	}
}

/* ---- socket I/O ------------------------------------------------------ */

/* Returns 0 or the code the connection failed with. */
static int do_read(ipchub_async *a)
{
	size_t budget = IPCHUB_CLIENT_ASYNC_READ_BUDGET;

	while (budget > 0 && !a->eof) {
		uint8_t *p;
		size_t cap;
		ssize_t n;
		int rc = sess_in_space(&a->s, &p, &cap);

		if (rc)
			return rc == IPCHUB_E_NOMEM ? 0 : rc;
		if (cap > budget)
			cap = budget;
		n = xport_recv(a->fd, &(struct iovec){.iov_base = p, .iov_len = cap},
			       1, NULL, NULL);
		if (n > 0) {
			sess_in_commit(&a->s, (size_t)n);
			budget -= (size_t)n;
			continue;
		}
		if (n == 0) {
			a->eof = true;
			return 0;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		return map_errno(errno);
	}
	return 0;
}

static int do_write(ipchub_async *a)
{
	for (;;) {
		size_t len;
		const uint8_t *p = sess_out_data(&a->s, &len);
		ssize_t n;

		if (len == 0)
			return 0;
		n = xport_send(a->fd,
			       &(struct iovec){.iov_base = (void *)p, .iov_len = len},
			       1, NULL, 0);
		if (n > 0) {
			sess_out_consume(&a->s, (size_t)n);
			recs_advance(a, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		return map_errno(n < 0 ? errno : EPIPE);
	}
}

/* ---- timers ---------------------------------------------------------- */

static void run_timers(ipchub_async *a)
{
	int64_t now = now_ns();

	if (a->timer_at <= now) {
		a->timer_at = INT64_MAX;
		switch (a->st) {
		case ST_WAIT:
			if (try_connect(a) != IPCHUB_OK) {
				if (a->flags & IPCHUB_ASYNC_NO_RECONNECT)
					finish(a, IPCHUB_E_NO_BROKER);
				else
					schedule_retry(a);
			}
			break;
		case ST_HANDSHAKE:
			conn_lost(a, IPCHUB_E_TIMEOUT);
			break;
		case ST_CLOSING:
			finish(a, IPCHUB_OK);
			break;
		default:
			break;
		}
	}
	while (a->n_pend && a->heap[0]->deadline <= now && !a->free_pending &&
	       a->st != ST_CLOSED) {
		struct pend *p = a->heap[0];

		pend_remove(a, p);
		if (p->type == P_RESTORE) {
			pend_free(p);
			conn_lost(a, IPCHUB_E_TIMEOUT);
			return;
		}
		if (p->type == P_REQUEST) {
			/* Free the broker's entry; its answer then matches
			 * nothing and is dropped. */
			struct frame_hdr c;

			frame_init(&c, WIRE_CANCEL);
			c.id = p->id;
			c.has |= FH(WK_ID);
			(void)enqueue(a, &c, NULL, 0, true, false);
		}
		settle(a, p, IPCHUB_E_TIMEOUT, NULL);
	}
}

/* ---- public: lifetime ------------------------------------------------ */

#define CHECK(a)                                                    \
	do {                                                        \
		if (!(a))                                           \
			return IPCHUB_E_INVALID;                    \
		if (!owner(a))                                      \
			return IPCHUB_E_WRONG_THREAD;               \
	} while (0)

int ipchub_async_new(const struct ipchub_async_opts *opts,
		     const struct ipchub_async_callbacks *cbs, void *ud,
		     ipchub_async **out)
{
	const char *agent = "libipchub/" IPCHUB_VERSION_STRING;
	ipchub_async *a;
	int rc;

	if (!out || (opts && opts->timeout_ms < 0))
		return IPCHUB_E_INVALID;
	a = calloc(1, sizeof(*a));
	if (!a)
		return IPCHUB_E_NOMEM;
	a->owner = pthread_self();
	if (cbs)
		a->cb = *cbs;
	a->ud = ud;
	a->fd = XPORT_NONE;
	a->timeout_ms = (opts && opts->timeout_ms) ? opts->timeout_ms
						   : IPCHUB_CLIENT_CONNECT_TIMEOUT_MS;
	a->hwm = (opts && opts->hwm) ? opts->hwm : IPCHUB_CLIENT_OUT_HWM;
	a->flags = opts ? opts->flags : 0;
	if (opts && opts->agent)
		agent = opts->agent;
	snprintf(a->agent, sizeof(a->agent), "%s", agent);
	a->max_frame = IPCHUB_MAX_FRAME_DEFAULT;
	a->epoch = 1;
	a->next_id = 1;
	a->timer_at = INT64_MAX;
	a->rng = (uint64_t)now_ns() ^ (uint64_t)(uintptr_t)a ^
		 ((uint64_t)getpid() << 32);
	if (!a->rng)
		a->rng = 1;
	sess_init(&a->s);
	if (addr_resolve(opts ? opts->socket : NULL, a->path, sizeof(a->path)) < 0) {
		free(a);
		return IPCHUB_E_INVALID;
	}
	rc = try_connect(a);
	if (rc) {
		if (!(a->flags & IPCHUB_ASYNC_WAIT_FOR_BROKER) ||
		    rc == IPCHUB_E_INVALID) {
			sess_destroy(&a->s);
			orecq_free(&a->recs);
			free(a);
			return rc;
		}
		schedule_retry(a);
	}
	*out = a;
	return IPCHUB_OK;
}

int ipchub_async_close(ipchub_async *a)
{
	struct frame_hdr f;

	CHECK(a);
	if (a->st == ST_CLOSED || a->st == ST_CLOSING)
		return IPCHUB_OK;
	enter(a);
	frame_init(&f, WIRE_BYE);
	if (direct(a) && enqueue(a, &f, NULL, 0, true, false) == IPCHUB_OK) {
		a->st = ST_CLOSING;
		a->timer_at = now_ns() + ms_ns(IPCHUB_CLIENT_CLOSE_FLUSH_MS);
	} else {
		finish(a, IPCHUB_OK);
	}
	leave(a);
	return IPCHUB_OK;
}

static void really_free(ipchub_async *a)
{
	a->freeing = true;
	a->free_pending = false;
	a->depth++;
	if (a->st != ST_CLOSED) {
		struct frame_hdr f;

		frame_init(&f, WIRE_BYE);
		if (direct(a) && a->fd >= 0 && !a->connecting &&
		    enqueue(a, &f, NULL, 0, true, false) == IPCHUB_OK)
			(void)do_write(a);
		finish(a, IPCHUB_OK);
	}
	a->depth--;
	if (a->watch)
		a->watch(a, IPCHUB_ASYNC_WATCH_FREE, a->watch_ctx);
	while (a->rhead) {
		struct rnode *n = a->rhead;

		a->rhead = n->next;
		free(n);
	}
	for (size_t i = 0; i < a->n_lost; i++)
		free((char *)a->lost[i].name);
	free(a->lost);
	free(a->slot);
	free(a->heap);
	sess_destroy(&a->s);
	sess_buf_free(&a->park);
	orecq_free(&a->recs);
	orecq_free(&a->park_recs);
	close_socket(a);
	free(a);
}

void ipchub_async_free(ipchub_async *a)
{
	if (!a || !owner(a) || a->freeing)
		return;
	if (a->depth > 0) {
		a->free_pending = true;
		return;
	}
	really_free(a);
}

/* ---- public: driving ------------------------------------------------- */

int ipchub_async_fd(const ipchub_async *a) { return (int)a->fd; }

int ipchub_async_wants_write(const ipchub_async *a)
{
	return a->fd >= 0 && (a->connecting || sess_out_len(&a->s) > 0);
}

int ipchub_async_next_timeout_ms(const ipchub_async *a)
{
	int64_t t = a->timer_at, left;

	if (a->n_pend && a->heap[0]->deadline < t)
		t = a->heap[0]->deadline;
	if (t == INT64_MAX)
		return -1;
	left = t - now_ns();
	if (left <= 0)
		return 0;
	left = (left + 999999) / 1000000;
	return left > INT_MAX ? INT_MAX : (int)left;
}

int ipchub_async_set_watch(ipchub_async *a, ipchub_async_watch_fn fn,
			   void *ctx)
{
	CHECK(a);
	a->watch = fn;
	a->watch_ctx = ctx;
	return IPCHUB_OK;
}

int ipchub_async_process(ipchub_async *a, int revents)
{
	int rc;

	CHECK(a);
	if (a->depth > 0)
		return IPCHUB_E_INVALID;
	if (a->st == ST_CLOSED)
		return IPCHUB_E_CLOSED;
	enter(a);
	if (a->fd >= 0 && a->connecting &&
	    (revents & (POLLOUT | POLLERR | POLLHUP))) {
		int err = xport_connect_result(a->fd);

		if (err) {
			close_socket(a);
			schedule_retry(a);
		} else {
			a->connecting = false;
		}
	}
	if (a->fd >= 0 && !a->connecting &&
	    (revents & (POLLIN | POLLHUP | POLLERR))) {
		rc = do_read(a);
		dispatch(a);
		if (rc && a->fd >= 0 && !a->free_pending)
			conn_lost(a, rc);
	}
	if (a->fd >= 0 && !a->connecting && !a->free_pending) {
		rc = do_write(a);
		if (rc)
			conn_lost(a, rc);
		else if (a->st == ST_CLOSING && sess_out_len(&a->s) == 0)
			finish(a, IPCHUB_OK);
	}
	if (!a->free_pending)
		run_timers(a);
	if (a->need_drain && !a->free_pending && a->st != ST_CLOSED &&
	    backlog(a) <= a->hwm / 2) {
		a->need_drain = false;
		if (a->cb.on_drain)
			a->cb.on_drain(a, a->ud);
	}
	rc = a->st == ST_CLOSED ? IPCHUB_E_CLOSED : IPCHUB_OK;
	leave(a);
	return rc;
}

/* ---- public: state --------------------------------------------------- */

int ipchub_async_state(const ipchub_async *a)
{
	switch (a->st) {
	case ST_OPEN:
	case ST_CLOSING:
		return IPCHUB_ASYNC_CONNECTED;
	case ST_CLOSED:
		return IPCHUB_ASYNC_CLOSED;
	default:
		return IPCHUB_ASYNC_DISCONNECTED;
	}
}

size_t ipchub_async_backlog(const ipchub_async *a) { return backlog(a); }

uint64_t ipchub_async_conn_id(const ipchub_async *a)
{
	return direct(a) ? a->s.conn : 0;
}

/* ---- public: names --------------------------------------------------- */

static int usable(const ipchub_async *a)
{
	return (a->st == ST_CLOSED || a->st == ST_CLOSING) ? IPCHUB_E_CLOSED
							   : IPCHUB_OK;
}

int async_stateful_op(ipchub_async *a, uint8_t frame_kind,
		      const struct async_rec *r, enum async_rec_action action,
		      ipchub_async_done_fn cb, void *ud, uint64_t *id_out)
{
	struct frame_hdr f;
	struct pend *p;
	struct async_rec *live = NULL;
	int rc;

	CHECK(a);
	rc = usable(a);
	if (rc)
		return rc;
	p = calloc(1, sizeof(*p));
	if (!p || pend_reserve(a) ||
	    (action != ASYNC_REC_NONE && !(p->rec = malloc(sizeof(*p->rec))))) {
		pend_free(p);
		return IPCHUB_E_NOMEM;
	}
	if (p->rec)
		*p->rec = *r;
	p->id = a->next_id;
	p->type = P_OP;
	p->frame_kind = frame_kind;
	p->action = action;
	p->dcb = cb;
	p->ud = ud;
	p->deadline = now_ns() + ms_ns(a->timeout_ms);
	if (frame_kind == WIRE_UNSUBSCRIBE || frame_kind == WIRE_UNWATCH) {
		live = rec_find(a, r);
		frame_init(&f, frame_kind);
		f.id = p->id;
		f.sub = live ? live->wire_id : r->app_id;
		f.has |= FH(WK_ID) | FH(WK_SUB);
	} else {
		if (p->rec && action == ASYNC_REC_ADD &&
		    (frame_kind == WIRE_SUBSCRIBE || frame_kind == WIRE_WATCH))
			p->rec->app_id = p->rec->wire_id = p->id;
		rec_frame(&f, frame_kind, r, p->id);
	}
	rc = enqueue(a, &f, NULL, 0, true, false);
	if (rc) {
		pend_free(p);
		return rc;
	}
	if (live)
		live->removing = true;
	a->next_id++;
	pend_insert(a, p);
	if (id_out)
		*id_out = p->id;
	enter(a);
	leave(a);
	return IPCHUB_OK;
}

/* Fill a restore record keyed by a name (REGISTER, WATCH): the name must
 * be well-formed and not reserved for the broker. */
static int name_rec(struct async_rec *r, const char *name)
{
	size_t len;
	int rc = hdr_check_addr(name, &len);

	if (rc)
		return rc;
	if (name_is_reserved(name, len))
		return IPCHUB_E_BAD_NAME;
	memcpy(r->str, name, len);
	r->str[len] = '\0';
	r->len = (uint16_t)len;
	return IPCHUB_OK;
}

static int name_op(ipchub_async *a, uint8_t kind, const char *name,
		   ipchub_async_done_fn cb, void *ud)
{
	struct async_rec r = {.kind = WIRE_REGISTER, .skey = WK_NAME};
	int rc;

	CHECK(a);
	rc = name_rec(&r, name);
	if (rc)
		return rc;
	return async_stateful_op(a, kind, &r,
				 kind == WIRE_REGISTER ? ASYNC_REC_ADD : ASYNC_REC_REMOVE,
				 cb, ud, NULL);
}

int ipchub_async_register(ipchub_async *a, const char *name,
			  ipchub_async_done_fn cb, void *ud)
{
	return name_op(a, WIRE_REGISTER, name, cb, ud);
}

int ipchub_async_unregister(ipchub_async *a, const char *name,
			    ipchub_async_done_fn cb, void *ud)
{
	return name_op(a, WIRE_UNREGISTER, name, cb, ud);
}

/* ---- public: subscriptions and watches ------------------------------ */

int ipchub_async_subscribe(ipchub_async *a, const char *pattern, int policy,
			   ipchub_async_done_fn cb, void *ud, uint64_t *sub_id)
{
	struct async_rec r = {.kind = WIRE_SUBSCRIBE, .skey = WK_TOPIC};
	size_t len;

	CHECK(a);
	if (!pattern || policy < 0 || policy >= WIRE_POLICY_MAX_)
		return IPCHUB_E_INVALID;
	/* The broker checks the segments (BAD_NAME through cb); only what
	 * the frame cannot carry is refused here. */
	len = strnlen(pattern, IPCHUB_MAX_NAME + 1);
	if (len == 0 || len > IPCHUB_MAX_NAME)
		return IPCHUB_E_BAD_NAME;
	memcpy(r.str, pattern, len);
	r.str[len] = '\0';
	r.len = (uint16_t)len;
	if (policy != WIRE_POLICY_DROP_OLDEST) {
		r.nkey = WK_POLICY;
		r.num = (uint32_t)policy;
	}
	return async_stateful_op(a, WIRE_SUBSCRIBE, &r, ASYNC_REC_ADD, cb, ud,
				 sub_id);
}

/* End a confirmed subscription or watch (kind: the record's). */
static int un_op(ipchub_async *a, uint8_t kind, uint8_t frame_kind,
		 uint64_t id, ipchub_async_done_fn cb, void *ud)
{
	struct async_rec *r;
	int rc;

	CHECK(a);
	rc = usable(a);
	if (rc)
		return rc;
	r = rec_by_app(a, kind, id);
	if (!r || r->removing)
		return IPCHUB_E_NO_SUCH_REQUEST;
	return async_stateful_op(a, frame_kind, r, ASYNC_REC_REMOVE, cb, ud,
				 NULL);
}

int ipchub_async_unsubscribe(ipchub_async *a, uint64_t sub_id,
			     ipchub_async_done_fn cb, void *ud)
{
	return un_op(a, WIRE_SUBSCRIBE, WIRE_UNSUBSCRIBE, sub_id, cb, ud);
}

int ipchub_async_watch(ipchub_async *a, const char *name,
		       ipchub_async_done_fn cb, void *ud, uint64_t *watch_id)
{
	struct async_rec r = {.kind = WIRE_WATCH, .skey = WK_NAME};
	int rc;

	CHECK(a);
	rc = name_rec(&r, name);
	if (rc)
		return rc;
	return async_stateful_op(a, WIRE_WATCH, &r, ASYNC_REC_ADD, cb, ud,
				 watch_id);
}

int ipchub_async_unwatch(ipchub_async *a, uint64_t watch_id,
			 ipchub_async_done_fn cb, void *ud)
{
	return un_op(a, WIRE_WATCH, WIRE_UNWATCH, watch_id, cb, ud);
}

/* ---- public: messages ------------------------------------------------ */

/* SEND and PUBLISH: validate, queue under the backpressure rule (taking
 * an id only once queued). dst goes under key (WK_TO or WK_TOPIC); both
 * follow the name grammar. */
static int one_way(ipchub_async *a, enum wire_kind kind, enum wire_key key,
		   const char *dst, const void *body, size_t len,
		   uint64_t *id_out)
{
	struct frame_hdr f;
	size_t dlen;
	int rc;

	rc = usable(a);
	if (!rc)
		rc = kind == WIRE_SEND ? hdr_check_addr(dst, &dlen)
					 : hdr_check_name(dst, &dlen);
	if (!rc && kind == WIRE_PUBLISH && name_is_reserved(dst, dlen))
		rc = IPCHUB_E_BAD_NAME;
	if (!rc)
		rc = hdr_check_body(out_limit(a), body, len);
	if (rc)
		return rc;
	frame_init(&f, kind);
	f.id = a->next_id;
	f.has |= FH(WK_ID);
	frame_set_str(&f, key, dst, dlen);
	rc = enqueue(a, &f, body, len, false, false);
	if (rc)
		return rc;
	a->next_id++;
	if (id_out)
		*id_out = f.id;
	enter(a);
	leave(a);
	return IPCHUB_OK;
}

int ipchub_async_send(ipchub_async *a, const char *to, const void *body,
		      size_t len, uint64_t *id_out)
{
	CHECK(a);
	return one_way(a, WIRE_SEND, WK_TO, to, body, len, id_out);
}

int ipchub_async_publish(ipchub_async *a, const char *topic,
			 const void *body, size_t len)
{
	CHECK(a);
	return one_way(a, WIRE_PUBLISH, WK_TOPIC, topic, body, len, NULL);
}

int ipchub_async_request(ipchub_async *a, const char *to, const void *body,
			 size_t len, int timeout_ms, ipchub_async_reply_fn cb,
			 void *ud, uint64_t *req_id)
{
	struct frame_hdr f;
	struct pend *p;
	size_t tolen;
	int rc;

	CHECK(a);
	if (!cb || timeout_ms <= 0)
		return IPCHUB_E_INVALID;
	if ((unsigned)timeout_ms > IPCHUB_MAX_TIMEOUT_MS)
		timeout_ms = (int)IPCHUB_MAX_TIMEOUT_MS;
	rc = usable(a);
	if (!rc)
		rc = hdr_check_addr(to, &tolen);
	if (!rc)
		rc = hdr_check_body(out_limit(a), body, len);
	if (rc)
		return rc;
	p = calloc(1, sizeof(*p));
	if (!p || pend_reserve(a)) {
		free(p);
		return IPCHUB_E_NOMEM;
	}
	p->id = a->next_id;
	p->type = P_REQUEST;
	p->frame_kind = WIRE_REQUEST;
	p->rcb = cb;
	p->ud = ud;
	p->deadline = now_ns() + ms_ns((int64_t)timeout_ms + IPCHUB_CLIENT_REQUEST_GRACE_MS);
	frame_init(&f, WIRE_REQUEST);
	f.id = p->id;
	f.timeout = (uint32_t)timeout_ms;
	f.has |= FH(WK_ID) | FH(WK_TIMEOUT);
	frame_set_str(&f, WK_TO, to, tolen);
	rc = enqueue(a, &f, body, len, false, false);
	if (rc) {
		free(p);
		return rc;
	}
	a->next_id++;
	pend_insert(a, p);
	if (req_id)
		*req_id = p->id;
	enter(a);
	leave(a);
	return IPCHUB_OK;
}

int ipchub_async_cancel(ipchub_async *a, uint64_t req_id)
{
	struct frame_hdr c;
	struct pend *p;

	CHECK(a);
	p = pend_find(a, req_id);
	if (!p || p->type != P_REQUEST)
		return IPCHUB_E_NO_SUCH_REQUEST;
	enter(a);
	pend_remove(a, p);
	frame_init(&c, WIRE_CANCEL);
	c.id = req_id;
	c.has |= FH(WK_ID);
	(void)enqueue(a, &c, NULL, 0, true, false);
	settle(a, p, IPCHUB_E_CANCELLED, NULL);
	leave(a);
	return IPCHUB_OK;
}

static int reply_common(ipchub_async *a, const ipchub_msg *req, int code,
			const char *text, const void *body, size_t len)
{
	struct frame_hdr f;
	int rc;

	CHECK(a);
	rc = hdr_reply(&f, req, code, text);
	if (rc)
		return rc;
	rc = usable(a);
	if (rc)
		return rc;
	if (req->epoch != a->epoch || !direct(a))
		return IPCHUB_E_CLOSED;
	rc = hdr_check_body(out_limit(a), body, len);
	if (rc)
		return rc;
	rc = enqueue(a, &f, body, len, false, false);
	if (rc)
		return rc;
	enter(a);
	leave(a);
	return IPCHUB_OK;
}

int ipchub_async_reply(ipchub_async *a, const ipchub_msg *req,
		       const void *body, size_t len)
{
	return reply_common(a, req, 0, NULL, body, len);
}

int ipchub_async_reply_error(ipchub_async *a, const ipchub_msg *req,
			     int code, const char *message)
{
	if (code <= 0 || code >= IPCHUB_E_IO)
		return IPCHUB_E_INVALID;
	return reply_common(a, req, code, message, NULL, 0);
}
