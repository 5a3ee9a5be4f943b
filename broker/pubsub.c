/*
 * pubsub.c - see pubsub.h. Invariants: conn->subs_backlog counts the
 * connection's subscriptions with queued items or a pending gap_tail
 * (backlogged()); a subscription's queue holds only publications, each
 * with one reference; ps_msg is freed when its last reference (queue
 * item, evbuffer reference, or the fan-out's own) goes.
 */
#include "pubsub.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "log.h"
#include "name.h"
#include "monitor.h"
#include "mpr.h"
#include "presence.h"
#include "stats.h"

/* Bodies smaller than this are copied into each subscriber's output: an
 * evbuffer reference chain costs more than copying a small body. */
#define PS_COPY_MAX 512u

static const char *const policy_names[WIRE_POLICY_MAX_] = {
	[WIRE_POLICY_DROP_OLDEST] = "drop-oldest",
	[WIRE_POLICY_DROP_NEWEST] = "drop-newest",
	[WIRE_POLICY_DISCONNECT] = "disconnect",
	[WIRE_POLICY_BLOCK] = "block",
};

const char *pubsub_policy_name(unsigned policy)
{
	return policy < WIRE_POLICY_MAX_ ? policy_names[policy] : "?";
}

int pubsub_init(struct pubsub *ps)
{
	memset(ps, 0, sizeof(*ps));
	TAILQ_INIT(&ps->graveyard);
	return topic_init(&ps->tree);
}

void pubsub_fini(struct pubsub *ps)
{
	topic_fini(&ps->tree);
	free(ps->match);
	ps->match = NULL;
}

static void msg_unref(struct ps_msg *m)
{
	if (--m->refs == 0)
		free(m);
}

static void msg_unref_cb(const void *data, size_t len, void *arg)
{
	(void)data;
	(void)len;
	msg_unref(arg);
}

static bool backlogged(const struct ps_sub *s)
{
	return s->qn > 0 || s->gap_tail > 0;
}

static void backlog_update(struct ps_sub *s, bool was)
{
	bool now = backlogged(s);

	if (now && !was)
		s->c->subs_backlog++;
	else if (!now && was)
		s->c->subs_backlog--;
}

static void reply_ok(struct conn *c, uint64_t id)
{
	struct frame_hdr h;

	frame_init(&h, WIRE_OK);
	h.id = id;
	h.has |= FH(WK_ID);
	conn_send_hdr(c, &h);
}

static void send_gap(struct conn *c, uint64_t sub, uint64_t count)
{
	struct frame_hdr h;

	frame_init(&h, WIRE_GAP);
	h.sub = sub;
	h.count = count;
	h.has |= FH(WK_SUB) | FH(WK_COUNT);
	conn_send_hdr(c, &h);
}

/* Append one PUBLISH delivery for s to s->c's output: element idx of m
 * (its id m->id + idx), whose bytes are m->body[off .. off + len), or,
 * with whole, all of the batch m as one frame with flags BATCH. */
static void deliver(struct ps_sub *s, struct ps_msg *m, uint32_t idx,
		    size_t off, size_t len, bool whole)
{
	struct conn *c = s->c;
	struct broker *b = c->b;
	struct frame_hdr h;
	uint8_t buf[FRAME_ENC_MAX];
	const uint8_t *body = m->body + off;
	uint32_t n = whole ? m->batch : 1;
	size_t hn;

	frame_init(&h, WIRE_PUBLISH);
	h.id = m->id + idx;
	h.sub = s->id;
	h.from_id = m->from_id;
	h.uid = m->uid;
	h.has |= FH(WK_ID) | FH(WK_SUB) | FH(WK_FROM_ID) | FH(WK_UID);
	if (whole) {
		h.flags = WF_BATCH;
		h.has |= FH(WK_FLAGS);
	}
	frame_set_str(&h, WK_TOPIC, m->topic, m->topic_len);
	if (m->from_len)
		frame_set_str(&h, WK_FROM, m->from, m->from_len);
	hn = frame_encode(&h, len, buf, sizeof(buf));
	if (monitor_active(b))
		monitor_tap(c, WIRE_MONITOR_OUT, &h, buf + IPCHUB_LEN_PREFIX,
			    hn - IPCHUB_LEN_PREFIX, NULL, 0, body, len);
	evbuffer_add(c->out, buf, hn);
	if (len >= PS_COPY_MAX) {
		m->refs++;
		if (evbuffer_add_reference(c->out, body, len, msg_unref_cb,
					   m) < 0) {
			m->refs--;
			evbuffer_add(c->out, body, len);
		}
	} else if (len) {
		evbuffer_add(c->out, body, len);
	}
	c->msgs_out++;
	s->delivered += n;
	stats_routed_n(&b->st, n, hn + len);
	broker_want_flush(b, c);
}

/* The elements of a batch body, in order (frame_batch_check passed it). */
struct elem_walk {
	struct iovec iov;
	struct mpr r;
	size_t total;
	uint32_t i, n;
};

static void walk_init(struct elem_walk *w, const struct ps_msg *m)
{
	mpr_init_buf(&w->r, &w->iov, m->body, m->len);
	w->total = m->len;
	w->i = 0;
	if (mpr_read_array(&w->r, &w->n) != MPR_OK)
		w->n = 0; /* not reached for a checked batch */
}

static bool walk_next(struct elem_walk *w, size_t *off, size_t *len)
{
	size_t at = w->total - (size_t)mpr_left(&w->r);

	if (w->i >= w->n ||
	    mpr_skip_value(&w->r, IPCHUB_MAX_BODY_DEPTH) != MPR_OK)
		return false;
	*off = at;
	*len = w->total - (size_t)mpr_left(&w->r) - at;
	w->i++;
	return true;
}

static void count_drop(struct ps_sub *s, uint64_t n)
{
	s->drops += n;
	s->c->drops += n;
	s->c->b->st.drops += n;
}

/* s is behind: queue element idx of m (bytes off .. off + len of its
 * body; all of a single publication), applying the policy when the queue
 * is full. */
static void enqueue(struct ps_sub *s, struct ps_msg *m, uint32_t idx,
		    size_t off, size_t len)
{
	struct broker *b = s->c->b;
	bool was = backlogged(s);
	struct ps_item *it;
	bool full = s->qn >= b->conf.sub_queue ||
		    (s->qn > 0 && s->qbytes + len > b->conf.queue_hwm);

	if (full) {
		switch (s->policy) {
		case WIRE_POLICY_DISCONNECT:
			s->doomed = true;
			return;
		case WIRE_POLICY_DROP_NEWEST:
			count_drop(s, 1);
			s->gap_tail++;
			backlog_update(s, was);
			return;
		default: { /* DROP_OLDEST (BLOCK never queues) */
			struct ps_item *head = TAILQ_FIRST(&s->q);
			struct ps_item *next = TAILQ_NEXT(head, link);

			TAILQ_REMOVE(&s->q, head, link);
			s->qn--;
			s->qbytes -= head->len;
			/* The loss sits where head was: before the next item,
			 * or (queue now empty) before what arrives next. */
			if (next)
				next->gap_before += head->gap_before + 1;
			else
				s->gap_tail += head->gap_before + 1;
			msg_unref(head->m);
			free(head);
			count_drop(s, 1);
			break;
		}
		}
	}
	it = malloc(sizeof(*it));
	if (!it) {
		/* Cannot queue it: it is lost, and said so. */
		count_drop(s, 1);
		s->gap_tail++;
		backlog_update(s, was);
		return;
	}
	m->refs++;
	it->m = m;
	it->idx = idx;
	it->off = off;
	it->len = len;
	it->gap_before = s->gap_tail;
	s->gap_tail = 0;
	TAILQ_INSERT_TAIL(&s->q, it, link);
	s->qn++;
	s->qbytes += len;
	backlog_update(s, was);
}

void pubsub_drain(struct conn *c)
{
	struct ps_sub *s;

	TAILQ_FOREACH(s, &c->subs, link) {
		bool was = backlogged(s);
		struct ps_item *it;

		while (!conn_over_hwm(c) && (it = TAILQ_FIRST(&s->q))) {
			TAILQ_REMOVE(&s->q, it, link);
			s->qn--;
			s->qbytes -= it->len;
			if (it->gap_before)
				send_gap(c, s->id, it->gap_before);
			deliver(s, it->m, it->idx, it->off, it->len, false);
			msg_unref(it->m);
			free(it);
		}
		if (!s->qn && s->gap_tail && !conn_over_hwm(c)) {
			send_gap(c, s->id, s->gap_tail);
			s->gap_tail = 0;
		}
		backlog_update(s, was);
		if (!c->subs_backlog || conn_over_hwm(c))
			break;
	}
}

uint64_t pubsub_queued_bytes(const struct conn *c)
{
	const struct ps_sub *s;
	uint64_t n = 0;

	TAILQ_FOREACH(s, &c->subs, link)
		n += s->qbytes;
	return n;
}

static struct ps_sub *find_sub(const struct conn *c, uint64_t id)
{
	struct ps_sub *s;

	TAILQ_FOREACH(s, &c->subs, link)
		if (s->id == id)
			return s;
	return NULL;
}

bool pubsub_id_in_use(const struct conn *c, uint64_t id)
{
	return find_sub(c, id) || presence_find(c, id) || monitor_find(c, id);
}

/* Unlink s from everything; free it now or, during a fan-out, later. */
static void sub_remove(struct ps_sub *s)
{
	struct conn *c = s->c;
	struct pubsub *ps = &c->b->ps;
	bool was = backlogged(s);
	struct ps_item *it;

	topic_remove(&ps->tree, &s->te);
	TAILQ_REMOVE(&c->subs, s, link);
	while ((it = TAILQ_FIRST(&s->q))) {
		TAILQ_REMOVE(&s->q, it, link);
		msg_unref(it->m);
		free(it);
	}
	s->qn = 0;
	s->qbytes = 0;
	s->gap_tail = 0;
	backlog_update(s, was);
	c->nsubs--;
	ps->nsubs--;
	s->c = NULL;
	if (ps->busy)
		TAILQ_INSERT_TAIL(&ps->graveyard, s, link);
	else
		free(s);
}

void pubsub_subscribe(struct conn *c, struct conn_frame *f)
{
	const struct frame_hdr *h = &f->h;
	struct pubsub *ps = &c->b->ps;
	struct ps_sub *s;
	char d[384];

	if (pubsub_id_in_use(c, h->id)) {
		conn_fail(c, WIRE_E_PROTOCOL, WIRE_SUBSCRIBE, h->id,
			  "id %llu already names a live subscription, watch or tap",
			  (unsigned long long)h->id);
		return;
	}
	if (topic_pattern_check(h->topic, h->topic_len) != WIRE_E_OK) {
		conn_send_error(c, h->id, WIRE_E_BAD_NAME, WIRE_SUBSCRIBE, NULL,
				0, NULL, 0, "malformed topic pattern");
		return;
	}
	if (c->nsubs >= c->b->conf.max_subs) {
		conn_send_error(c, h->id, WIRE_E_LIMIT, WIRE_SUBSCRIBE, NULL, 0,
				NULL, 0,
				"too many subscriptions, watches and taps");
		return;
	}
	s = calloc(1, sizeof(*s));
	if (!s || topic_add(&ps->tree, &s->te, h->topic, h->topic_len) < 0) {
		free(s);
		conn_send_error(c, h->id, WIRE_E_INTERNAL, WIRE_SUBSCRIBE, NULL,
				0, NULL, 0, "out of memory");
		return;
	}
	s->c = c;
	s->id = h->id;
	s->policy = (h->has & FH(WK_POLICY)) ? (uint8_t)h->policy
					     : WIRE_POLICY_DROP_OLDEST;
	TAILQ_INIT(&s->q);
	s->pat_len = h->topic_len;
	memcpy(s->pat, h->topic, h->topic_len);
	s->pat[h->topic_len] = '\0';
	TAILQ_INSERT_TAIL(&c->subs, s, link);
	c->nsubs++;
	ps->nsubs++;
	log_debug(&c->b->log, "%s subscribed %llu to %s (%s)",
		  conn_desc(c, d, sizeof(d)), (unsigned long long)s->id, s->pat,
		  pubsub_policy_name(s->policy));
	reply_ok(c, h->id);
}

void pubsub_unsubscribe(struct conn *c, struct conn_frame *f)
{
	const struct frame_hdr *h = &f->h;
	struct ps_sub *s = find_sub(c, h->sub);

	if (s) {
		sub_remove(s);
		reply_ok(c, h->id);
		return;
	}
	if (monitor_untap(c, h->sub)) {
		reply_ok(c, h->id);
		return;
	}
	conn_send_error(c, h->id, WIRE_E_NO_SUCH_REQUEST, WIRE_UNSUBSCRIBE,
			NULL, 0, NULL, 0,
			"no subscription or monitor tap with this id");
}

static void collect(struct topic_entry *e, void *arg)
{
	struct pubsub *ps = arg;

	/* Sized before the match (see grow_match); never overflows. */
	if (ps->nmatch < ps->match_cap)
		ps->match[ps->nmatch++] = (struct ps_sub *)e;
}

/* Make room for every subscription in the trie. */
static int grow_match(struct pubsub *ps)
{
	size_t want = ps->nsubs ? (size_t)ps->nsubs : 1;
	struct ps_sub **v;

	if (ps->match_cap >= want)
		return 0;
	v = realloc(ps->match, want * sizeof(*v));
	if (!v)
		return -ENOMEM;
	ps->match = v;
	ps->match_cap = want;
	return 0;
}

static void disconnect_slow(struct ps_sub *s)
{
	struct conn *c = s->c;
	struct frame_hdr h;
	char msg[IPCHUB_MAX_ERRMSG + 1], d[384];
	int n;

	n = snprintf(msg, sizeof(msg),
		     "subscription %llu (%s) fell more than %u publications "
		     "behind; its policy is disconnect",
		     (unsigned long long)s->id, s->pat, c->b->conf.sub_queue);
	log_warn(&c->b->log, "%s closed: %s", conn_desc(c, d, sizeof(d)), msg);
	frame_init(&h, WIRE_BYE);
	h.code = WIRE_E_QUEUE_FULL;
	h.has |= FH(WK_CODE);
	frame_set_str(&h, WK_MSG, msg, n > 0 ? (size_t)n : 0);
	conn_send_hdr(c, &h);
	conn_close(c, "slow subscriber (policy disconnect)");
}

/* The batch m to s one element at a time: delivered directly (now: the
 * whole batch was admitted at once, as a batched SEND is) or queued, each
 * element meeting the queue limit and the policy on its own. */
static void fan_elements(struct ps_sub *s, struct ps_msg *m, bool now)
{
	struct elem_walk w;
	size_t off, len;

	walk_init(&w, m);
	while (s->c && !s->doomed && walk_next(&w, &off, &len)) {
		if (now)
			deliver(s, m, w.i - 1, off, len, false);
		else
			enqueue(s, m, w.i - 1, off, len);
	}
}

void pubsub_publish(struct conn *c, struct conn_frame *f)
{
	struct broker *b = c->b;
	struct pubsub *ps = &b->ps;
	const struct frame_hdr *h = &f->h;
	struct ps_msg *m;
	struct ps_sub *s;
	size_t nlen, n;
	const char *from;

	if (topic_check(h->topic, h->topic_len) != WIRE_E_OK ||
	    name_is_reserved(h->topic, h->topic_len)) {
		conn_send_error_count(c, h->id, WIRE_E_BAD_NAME, WIRE_PUBLISH,
				      NULL, 0, NULL, 0,
				      "malformed or reserved topic (wildcards are for patterns)",
				      f->batch);
		return;
	}
	if (grow_match(ps) < 0) {
		conn_send_error_count(c, h->id, WIRE_E_INTERNAL, WIRE_PUBLISH,
				      NULL, 0, NULL, 0, "out of memory", f->batch);
		return;
	}
	ps->nmatch = 0;
	topic_match(&ps->tree, h->topic, h->topic_len, collect, ps);
	if (ps->nmatch == 0)
		return;
	/* BLOCK subscribers over the mark hold the whole publication back,
	 * so that on retry every subscriber gets it exactly once. */
	for (size_t i = 0; i < ps->nmatch; i++) {
		s = ps->match[i];
		if (s->policy == WIRE_POLICY_BLOCK && conn_over_hwm(s->c) &&
		    s->c->state == CONN_READY) {
			conn_park(c, s->c, f);
			return;
		}
	}
	m = malloc(sizeof(*m) + f->body_len);
	if (!m) {
		conn_send_error_count(c, h->id, WIRE_E_INTERNAL, WIRE_PUBLISH,
				      NULL, 0, NULL, 0, "out of memory", f->batch);
		return;
	}
	m->refs = 1;
	m->batch = f->batch;
	m->id = h->id;
	m->from_id = c->id;
	m->uid = (uint32_t)c->cred.uid;
	m->topic_len = h->topic_len;
	memcpy(m->topic, h->topic, h->topic_len);
	from = conn_primary(c, &nlen);
	m->from_len = (uint16_t)nlen;
	if (nlen)
		memcpy(m->from, from, nlen);
	m->len = f->body_len;
	if (m->len) {
		struct evbuffer_ptr pos;

		evbuffer_ptr_set(c->in, &pos, IPCHUB_LEN_PREFIX + f->hdr_len,
				 EVBUFFER_PTR_SET);
		evbuffer_copyout_from(c->in, &pos, m->body, m->len);
	}

	if (m->batch)
		b->st.routed_batches++;
	ps->busy++;
	n = ps->nmatch;
	for (size_t i = 0; i < n; i++) {
		bool now;

		s = ps->match[i];
		if (!s->c || s->c->state != CONN_READY)
			continue;
		now = s->policy == WIRE_POLICY_BLOCK ||
		      (!backlogged(s) && !conn_over_hwm(s->c));
		if (!m->batch) {
			if (now)
				deliver(s, m, 0, 0, m->len, false);
			else
				enqueue(s, m, 0, 0, m->len);
		} else if (now && s->c->pub_batch_rx) {
			deliver(s, m, 0, 0, m->len, true);
		} else {
			fan_elements(s, m, now);
		}
	}
	for (size_t i = 0; i < n; i++) {
		s = ps->match[i];
		if (s->doomed && s->c && s->c->state == CONN_READY)
			disconnect_slow(s);
	}
	ps->busy--;
	msg_unref(m);
	if (!ps->busy) {
		while ((s = TAILQ_FIRST(&ps->graveyard))) {
			TAILQ_REMOVE(&ps->graveyard, s, link);
			free(s);
		}
	}
}

void pubsub_conn_gone(struct conn *c)
{
	struct ps_sub *s;

	while ((s = TAILQ_FIRST(&c->subs)))
		sub_remove(s);
}
