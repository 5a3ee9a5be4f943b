/*
 * batch.c - batched SENDs: appending to the open outbound SEND frame and
 * splitting inbound batches and multi-id ERRORs into per-message events.
 * See batch.h for the model.
 *
 * Layout of an open batch of count >= 2 messages, from its first byte
 * (out.len - out.open):
 *
 *   length prefix | header (flags BATCH) | 0xdd n n n n | body 0 | body 1 ...
 *   0               4                      ob.hdr_len
 *
 * The array is always `array 32`, so its header never changes size and
 * appending is a copy at the end plus two patches (count and prefix).
 * Everything here works on offsets from the buffer's end or the frame's
 * start, never on pointers kept across calls: the buffers move.
 */
#include <string.h>

#include "batch.h"
#include "lend.h"
#include "limits.h"
#include "msg.h"

/* msgpack `array 32`: 0xdd then a 4-byte big-endian count. */
#define BATCH_ARRAY_HDR 5u

static void put_be32(uint8_t *p, uint32_t v) { frame_put_len(p, v); }

static uint32_t send_flags(const struct frame_hdr *h)
{
	return (h->has & FH(WK_FLAGS)) ? h->flags : 0;
}

/* The header of the open frame once it carries count messages (>= 2). */
static size_t batch_head(const struct sess *s, size_t body_len, uint8_t *out)
{
	struct frame_hdr bh;

	frame_init(&bh, s->ob.kind);
	bh.id = s->ob.id;
	bh.flags = s->ob.flags | WF_BATCH;
	bh.has |= FH(WK_ID) | FH(WK_FLAGS);
	frame_set_str(&bh, s->ob.kind == WIRE_SEND ? WK_TO : WK_TOPIC,
		      s->ob.to, s->ob.to_len);
	return frame_encode(&bh, body_len, out, FRAME_ENC_MAX);
}

size_t sess_batch_cost(const struct sess *s, int kind, const char *to,
		       size_t to_len, uint32_t flags, uint64_t id, size_t len)
{
	const struct sess_batch *b = &s->ob;
	size_t add = len, flen;

	if (!s->out.open || s->state != SESS_READY || len == 0 ||
	    kind != b->kind ||
	    len > IPCHUB_CLIENT_BATCH_BODY_MAX ||
	    b->count >= IPCHUB_MAX_BATCH || id != b->id + b->count ||
	    flags != b->flags || to_len != b->to_len ||
	    memcmp(to, b->to, to_len) != 0)
		return 0;
	if (b->count == 1) {
		/* Converting: a new header, and the array header. */
		uint8_t head[FRAME_ENC_MAX];
		size_t hl = batch_head(s, 0, head);

		add += hl + BATCH_ARRAY_HDR;
		add -= b->hdr_len; /* < hl: the new header adds flags */
	}
	flen = s->out.open - IPCHUB_LEN_PREFIX + add;
	if (flen > IPCHUB_CLIENT_BATCH_BYTES || flen > s->max_frame)
		return 0;
	return add;
}

int sess_batch_add(struct sess *s, size_t add, const void *body,
		   size_t len)
{
	struct sess_buf *o = &s->out;
	struct sess_batch *b = &s->ob;
	uint8_t *start;

	if (sess_buf_reserve(o, add))
		return IPCHUB_E_NOMEM;
	start = o->data + o->len - o->open;
	if (b->count == 1) {
		uint8_t head[FRAME_ENC_MAX];
		size_t first = o->open - b->hdr_len; /* the first body */
		size_t hl = batch_head(s, 0, head);

		memmove(start + hl + BATCH_ARRAY_HDR, start + b->hdr_len, first);
		memcpy(start, head, hl);
		start[hl] = 0xdd;
		b->hdr_len = hl;
		o->open = hl + BATCH_ARRAY_HDR + first;
	}
	memcpy(start + o->open, body, len);
	o->open += len;
	o->len = (size_t)(start - o->data) + o->open;
	b->count++;
	put_be32(start + b->hdr_len + 1, b->count);
	frame_put_len(start, (uint32_t)(o->open - IPCHUB_LEN_PREFIX));
	return IPCHUB_OK;
}

void sess_batch_open(struct sess *s, const struct frame_hdr *h, size_t len,
		     size_t frame_bytes)
{
	struct sess_batch *b = &s->ob;

	if (!s->batch_ok || s->state != SESS_READY ||
	    !(h->kind == WIRE_SEND ||
	      (h->kind == WIRE_PUBLISH && s->pub_batch_ok)) ||
	    len == 0 || len > IPCHUB_CLIENT_BATCH_BODY_MAX ||
	    (send_flags(h) & WF_BATCH))
		return;
	b->kind = (uint8_t)h->kind;
	b->id = h->id;
	b->count = 1;
	b->flags = send_flags(h);
	b->hdr_len = frame_bytes - len;
	if (h->kind == WIRE_SEND) {
		b->to_len = h->to_len;
		memcpy(b->to, h->to, h->to_len);
	} else {
		b->to_len = h->topic_len;
		memcpy(b->to, h->topic, h->topic_len);
	}
	b->to[b->to_len] = '\0';
	s->out.open = frame_bytes;
}

int sess_queue_send(struct sess *s, const struct frame_hdr *h,
		    const void *body, size_t len)
{
	size_t before, add;
	int rc;

	if (!s->batch_ok)
		return sess_queue_frame(s, h, body, len);
	if (h->kind == WIRE_SEND)
		add = sess_batch_cost(s, WIRE_SEND, h->to, h->to_len,
				      send_flags(h), h->id, len);
	else if (h->kind == WIRE_PUBLISH)
		add = sess_batch_cost(s, WIRE_PUBLISH, h->topic, h->topic_len,
				      send_flags(h), h->id, len);
	else
		add = 0;
	if (add)
		return sess_batch_add(s, add, body, len);
	before = sess_out_len(s);
	rc = sess_queue_frame(s, h, body, len);
	if (rc == IPCHUB_OK)
		sess_batch_open(s, h, len, sess_out_len(s) - before);
	return rc;
}

bool sess_batch_to_is(const struct sess *s, int kind, const char *name,
		      size_t *len)
{
	size_t n;

	if (!s->out.open || kind != s->ob.kind)
		return false;
	n = strnlen(name, (size_t)s->ob.to_len + 1);
	if (n != s->ob.to_len || memcmp(name, s->ob.to, n) != 0)
		return false;
	*len = n;
	return true;
}

/* Bytes of the msgpack value at p (at most left bytes), which
 * frame_batch_check() has accepted: flat values directly, containers by
 * the bounded walker. */
static size_t value_span(const uint8_t *p, size_t left)
{
	struct iovec iov;
	struct mpr r;
	size_t n = (size_t)mpr_flat_span(p, left);

	if (n)
		return n;
	mpr_init_buf(&r, &iov, p, left);
	(void)mpr_skip_value(&r, IPCHUB_MAX_BODY_DEPTH);
	return left - (size_t)mpr_left(&r);
}

int sess_split_next(struct sess *s, struct sess_event *ev)
{
	struct sess_split *sp = &s->split;
	const struct frame_hdr *h = &s->hdr;
	const uint8_t *frame = s->in.data + s->in.off;
	struct sess_event e = {0};
	ipchub_msg *m;
	size_t elen = 0;
	int rc;

	/* frame_batch_check proved the element is there and valid. */
	if (h->kind != WIRE_ERROR)
		elen = value_span(frame + sp->pos, sp->total - sp->pos);
	if (h->kind != WIRE_ERROR && s->lend.slot) {
		/* Lent in place: no template, no allocation; after the
		 * first element only the body (and id) change. */
		if (sp->slot_set) {
			m = sess_lend_body(s, elen ? frame + sp->pos : NULL, elen);
		} else {
			(void)sess_make_msg(s, h, elen ? frame + sp->pos : NULL,
					    elen, &m);
			sp->slot_set = true;
		}
	} else if (sp->tmpl) {
		rc = msg_clone(sp->tmpl, elen ? frame + sp->pos : NULL, elen, &m);
		if (rc)
			return rc;
	} else {
		rc = msg_from_frame(h, elen ? frame + sp->pos : NULL, elen, &m);
		if (rc)
			return rc;
		/* The others share everything but id and body. */
		rc = msg_clone(m, NULL, 0, &sp->tmpl);
		if (rc) {
			ipchub_msg_free(m);
			return rc;
		}
	}
	m->id = h->id + sp->i;
	e.id = m->id;
	e.msg = m;
	if (h->kind != WIRE_ERROR) {
		e.type = SESS_EV_MSG;
	} else {
		e.type = SESS_EV_ERROR;
		e.code = (int)h->code;
		e.ref = (h->has & FH(WK_REF)) ? h->ref : 0;
	}
	sp->pos += elen;
	if (++sp->i == sp->n) {
		sp->n = 0;
		ipchub_msg_free(sp->tmpl);
		sp->tmpl = NULL;
		/* A lent last element keeps the frame until the loan ends. */
		if (!sess_lend_hold(s, sp->total)) {
			s->in.off += sp->total;
			if (s->in.off == s->in.len)
				s->in.off = s->in.len = 0;
		}
	}
	*ev = e;
	return IPCHUB_OK;
}

int batch_iter_init(struct batch_iter *it, const uint8_t *frame, size_t len)
{
	bool has_body;
	uint32_t n;

	if (len < IPCHUB_LEN_PREFIX ||
	    frame_get_len(frame) != len - IPCHUB_LEN_PREFIX)
		return IPCHUB_E_BAD_FRAME;
	mpr_init_buf(&it->r, &it->iov, frame + IPCHUB_LEN_PREFIX,
		     len - IPCHUB_LEN_PREFIX);
	if (frame_decode(&it->r, FRAME_C2B, &it->h, &has_body, NULL) !=
		    WIRE_E_OK ||
	    it->h.kind != WIRE_SEND)
		return IPCHUB_E_BAD_FRAME;
	it->batch = (it->h.flags & WF_BATCH) != 0;
	it->id0 = it->h.id;
	it->i = 0;
	it->n = has_body ? 1 : 0;
	if (it->batch) {
		if (!has_body || mpr_read_array(&it->r, &n) != MPR_OK || n == 0)
			return IPCHUB_E_BAD_FRAME;
		it->n = n;
		it->h.flags &= ~(uint32_t)WF_BATCH;
		if (it->h.flags == 0)
			it->h.has &= ~FH(WK_FLAGS);
	}
	return IPCHUB_OK;
}

bool batch_iter_next(struct batch_iter *it, const uint8_t **body,
		     size_t *len)
{
	const uint8_t *p;
	uint64_t before = mpr_left(&it->r);

	if (it->n == 0 && it->i == 0 && !it->batch) {
		/* A plain SEND without a body: one message, no body. */
		it->i = 1;
		*body = NULL;
		*len = 0;
		return true;
	}
	if (it->i >= it->n)
		return false;
	p = (const uint8_t *)it->iov.iov_base + it->iov.iov_len - before;
	if (it->batch) {
		if (mpr_skip_value(&it->r, IPCHUB_MAX_BODY_DEPTH) != MPR_OK)
			return false;
		*len = (size_t)(before - mpr_left(&it->r));
	} else {
		*len = (size_t)before;
	}
	*body = p;
	it->h.id = it->id0 + it->i;
	it->i++;
	return true;
}
