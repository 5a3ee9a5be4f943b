/*
 * sess.c - client protocol state machine (no I/O); see sess.h.
 *
 * Model: two byte buffers with a consumed-prefix offset (off) and a fill
 * mark (len); bytes in [off, len) are live. Appending compacts first when
 * the dead prefix is in the way, so each buffer is one contiguous region
 * and the msgpack reader walks a complete frame in place, with no copy.
 * Invariants: off <= len <= cap; a frame is removed from the inbound
 * buffer only after its event has been produced (an allocation failure
 * leaves it in place for a retry); once state is SESS_DEAD, `dead` holds
 * the fatal code and no further frame is decoded or queued; while a
 * message is lent (lend.h) the inbound buffer's bytes do not move, the
 * lent frame stays in it and nothing is decoded.
 */
#include <stdlib.h>
#include <string.h>

#include "limits.h"
#include "mpr.h"
#include "batch.h"
#include "lend.h"
#include "msg.h"
#include "sess.h"

/* After a large frame, an empty inbound buffer bigger than this is freed
 * rather than kept, so one big message does not pin memory forever. */
#define SESS_IN_KEEP (4u * SESS_READ_CHUNK)

void sess_init(struct sess *s)
{
	memset(s, 0, sizeof(*s));
	s->state = SESS_NEW;
	s->next_id = 1;
	s->max_frame = IPCHUB_MAX_HEADER;
}

void sess_destroy(struct sess *s)
{
	if (!s)
		return;
	free(s->in.data);
	free(s->out.data);
	ipchub_msg_free(s->split.tmpl);
	s->split.tmpl = NULL;
	s->in = (struct sess_buf){0};
	s->out = (struct sess_buf){0};
}

void sess_kill(struct sess *s, int code)
{
	if (s->state == SESS_DEAD)
		return;
	s->state = SESS_DEAD;
	s->dead = code ? code : IPCHUB_E_CLOSED;
}

uint64_t sess_next_id(struct sess *s) { return s->next_id++; }

/* Make room for n more bytes after len. Returns 0 or IPCHUB_E_NOMEM (the
 * buffer is unchanged then, apart from a possible compaction).
 * Compaction moves the live bytes to the front. The outbound buffer
 * (span 0) compacts whenever its tail is short, which keeps it within four
 * times the most it held. The inbound buffer (span SESS_IN_SPAN) compacts
 * only when that is cheap (at most SESS_COMPACT_CHEAP live bytes) or once
 * it holds span times n, and grows below that: with 64 KiB reads of
 * 64 KiB frames, compacting whenever the tail was short moved about one
 * partial frame per message (97 % of the consumer's instructions with
 * ipchub_recv_lent); with four reads of room, once every few frames. */
#define SESS_IN_SPAN 4u
#define SESS_COMPACT_CHEAP 4096u
static int buf_reserve_span(struct sess_buf *b, size_t n, size_t span)
{
	size_t live = b->len - b->off;
	size_t want, ncap;
	uint8_t *p;

	if (b->cap - b->len >= n)
		return 0;
	if (b->off > 0 &&
	    (live <= SESS_COMPACT_CHEAP || n > SIZE_MAX / SESS_IN_SPAN ||
	     b->cap >= span * n)) {
		memmove(b->data, b->data + b->off, live);
		b->off = 0;
		b->len = live;
		if (b->cap - b->len >= n)
			return 0;
	}
	/* Grow; the dead prefix stays when compaction was not worth it. */
	if (n > SIZE_MAX / 2 - b->len)
		return IPCHUB_E_NOMEM;
	want = b->len + n;
	ncap = b->cap ? b->cap : 4096;
	while (ncap < want)
		ncap *= 2;
	p = realloc(b->data, ncap);
	if (!p)
		return IPCHUB_E_NOMEM;
	b->data = p;
	b->cap = ncap;
	return 0;
}

static int buf_reserve(struct sess_buf *b, size_t n)
{
	return buf_reserve_span(b, n, 0);
}

/* Largest frame the broker may send us in the current state. */
static uint32_t in_limit(const struct sess *s)
{
	return s->state == SESS_READY ? s->max_frame : IPCHUB_MAX_HEADER;
}

/* Largest frame we may send in the current state. */
static uint32_t out_limit(const struct sess *s)
{
	return s->state == SESS_READY ? s->max_frame : IPCHUB_MAX_PREAUTH_FRAME;
}

static int fail(struct sess *s, int code)
{
	sess_kill(s, code);
	return s->dead;
}

int sess_buf_encode(struct sess_buf *b, const struct frame_hdr *h,
		    const void *body, size_t len, uint32_t limit)
{
	uint8_t head[FRAME_ENC_MAX];
	size_t n;

	if (len > limit) /* also keeps frame_encode's sum in range */
		return IPCHUB_E_TOO_LARGE;
	n = frame_encode(h, len, head, sizeof(head));
	if ((uint64_t)(n - IPCHUB_LEN_PREFIX) + len > limit)
		return IPCHUB_E_TOO_LARGE;
	if (buf_reserve(b, n + len))
		return IPCHUB_E_NOMEM;
	b->open = 0; /* a new frame closes the batch before it */
	memcpy(b->data + b->len, head, n);
	if (len > 0)
		memcpy(b->data + b->len + n, body, len);
	b->len += n + len;
	return IPCHUB_OK;
}

int sess_buf_append(struct sess_buf *b, const void *bytes, size_t n)
{
	if (n == 0)
		return IPCHUB_OK;
	if (buf_reserve(b, n))
		return IPCHUB_E_NOMEM;
	b->open = 0;
	memcpy(b->data + b->len, bytes, n);
	b->len += n;
	return IPCHUB_OK;
}

int sess_buf_reserve(struct sess_buf *b, size_t n)
{
	return buf_reserve(b, n) ? IPCHUB_E_NOMEM : IPCHUB_OK;
}

void sess_buf_free(struct sess_buf *b)
{
	free(b->data);
	*b = (struct sess_buf){0};
}

int sess_queue_frame(struct sess *s, const struct frame_hdr *h,
		     const void *body, size_t len)
{
	if (s->state == SESS_DEAD)
		return s->dead;
	if (s->state == SESS_NEW && h->kind != WIRE_HELLO)
		return IPCHUB_E_PROTOCOL;
	return sess_buf_encode(&s->out, h, body, len, out_limit(s));
}

int sess_queue_hello(struct sess *s, const char *agent)
{
	struct frame_hdr h;
	int rc;

	if (s->state == SESS_DEAD)
		return s->dead;
	if (s->state != SESS_NEW)
		return IPCHUB_E_PROTOCOL;
	frame_init(&h, WIRE_HELLO);
	h.ver = IPCHUB_PROTO_VERSION_MAX;
	h.ver_min = IPCHUB_PROTO_VERSION_MIN;
	h.has |= FH(WK_VER) | FH(WK_VER_MIN);
	/* We split batched deliveries (PROTOCOL.md 6.3.1). */
	h.flags = WF_BATCH | WF_PUB_BATCH | (s->fds_rx ? WF_FDS : 0) |
		  (s->fds_rx && s->memfd_rx ? WF_MEMFD : 0) |
		  (s->bridge ? WF_BRIDGE : 0);
	h.has |= FH(WK_FLAGS);
	if (agent && *agent)
		frame_set_str(&h, WK_AGENT, agent,
			      strnlen(agent, IPCHUB_MAX_AGENT));
	rc = sess_queue_frame(s, &h, NULL, 0);
	if (rc == IPCHUB_OK)
		s->state = SESS_HELLO_SENT;
	return rc;
}

const uint8_t *sess_out_data(const struct sess *s, size_t *len)
{
	*len = s->out.len - s->out.off;
	return s->out.data + s->out.off;
}

void sess_out_consume(struct sess *s, size_t n)
{
	s->out.off += n;
	if (s->out.off >= s->out.len)
		s->out.off = s->out.len = 0;
	/* Bytes of the open batch went to the socket: it is closed. */
	if (s->out.len - s->out.off < s->out.open)
		s->out.open = 0;
}

/* Check the length prefix of the buffered frame, if it is complete.
 * Returns 0 or the fatal code; *total receives prefix + length (0 when
 * fewer than 4 bytes are buffered). */
static int in_check_len(struct sess *s, size_t *total)
{
	size_t live = s->in.len - s->in.off;
	uint32_t flen;
	int rc;

	*total = 0;
	if (live < IPCHUB_LEN_PREFIX)
		return 0;
	flen = frame_get_len(s->in.data + s->in.off);
	rc = frame_len_check(flen, in_limit(s));
	if (rc != WIRE_E_OK)
		return fail(s, rc);
	*total = (size_t)IPCHUB_LEN_PREFIX + flen;
	return 0;
}

int sess_in_space(struct sess *s, uint8_t **ptr, size_t *cap)
{
	size_t live, total, want = SESS_READ_CHUNK;
	int rc;

	if (s->state == SESS_DEAD)
		return s->dead;
	if (sess_lent(s)) /* compacting or growing would move the loan */
		return IPCHUB_E_INVALID;
	sess_lend_unpoison(s);
	live = s->in.len - s->in.off;
	if (live == 0 && s->in.cap > SESS_IN_KEEP) {
		free(s->in.data);
		s->in = (struct sess_buf){0};
	}
	rc = in_check_len(s, &total);
	if (rc)
		return rc;
	/* Room for the rest of a large partial frame in one go. */
	if (total > live && total - live > want)
		want = total - live;
	if (buf_reserve_span(&s->in, want, SESS_IN_SPAN))
		return IPCHUB_E_NOMEM;
	*ptr = s->in.data + s->in.len;
	*cap = s->in.cap - s->in.len;
	return IPCHUB_OK;
}

void sess_in_commit(struct sess *s, size_t n) { s->in.len += n; }

int sess_feed(struct sess *s, const void *bytes, size_t n)
{
	const uint8_t *p = bytes;

	while (n > 0) {
		uint8_t *dst;
		size_t cap;
		int rc = sess_in_space(s, &dst, &cap);

		if (rc)
			return rc;
		if (cap > n)
			cap = n;
		memcpy(dst, p, cap);
		sess_in_commit(s, cap);
		p += cap;
		n -= cap;
	}
	return IPCHUB_OK;
}

static int on_welcome(struct sess *s, const struct frame_hdr *h)
{
	if (h->ver < IPCHUB_PROTO_VERSION_MIN ||
	    h->ver > IPCHUB_PROTO_VERSION_MAX)
		return fail(s, IPCHUB_E_PROTOCOL);
	if (h->max_frame < IPCHUB_MAX_FRAME_MIN ||
	    h->max_frame > IPCHUB_MAX_FRAME_MAX)
		return fail(s, IPCHUB_E_BAD_FRAME);
	s->ver = h->ver;
	s->max_frame = h->max_frame;
	s->conn = h->conn;
	memcpy(s->broker, h->broker, h->broker_len);
	s->broker[h->broker_len] = '\0';
	s->batch_ok = (h->has & FH(WK_FLAGS)) && (h->flags & WF_BATCH);
	s->pub_batch_ok = s->batch_ok && (h->flags & WF_PUB_BATCH);
	s->memfd_ok = (h->has & FH(WK_FLAGS)) && (h->flags & WF_MEMFD);
	s->has_challenge = (h->has & FH(WK_CHALLENGE)) != 0;
	if (s->has_challenge)
		memcpy(s->challenge, h->challenge, sizeof(s->challenge));
	s->state = SESS_READY;
	return 0;
}

/* Begin splitting the buffered frame (h in s->hdr) into n events; body_off
 * is a batch body's offset from the frame start. Returns as
 * sess_next_event(); on failure no split is active. */
static int split_start(struct sess *s, struct sess_event *ev, uint32_t n,
		       size_t body_off, size_t total)
{
	int rc;

	s->split = (struct sess_split){.n = n, .pos = body_off, .total = total};
	if (body_off) {
		/* Elements start after the array header, in any encoding. */
		const uint8_t *p = s->in.data + s->in.off;
		struct iovec iov;
		struct mpr r;
		uint32_t cnt;

		mpr_init_buf(&r, &iov, p + body_off, total - body_off);
		(void)mpr_read_array(&r, &cnt); /* frame_batch_check passed */
		s->split.pos = total - (size_t)mpr_left(&r);
	}
	rc = sess_split_next(s, ev);
	if (rc)
		s->split.n = 0; /* retried from the frame's start */
	return rc;
}

int sess_next_event(struct sess *s, struct sess_event *ev)
{
	struct frame_hdr *h = &s->hdr;
	struct sess_event e = {0};
	struct iovec iov;
	struct mpr r;
	const uint8_t *frame, *body = NULL;
	size_t live, total, body_len = 0;
	bool has_body = false, batch;
	uint32_t n = 1;
	int rc;

	if (s->state == SESS_DEAD)
		return s->dead;
	if (sess_lent(s)) /* decoding would overwrite hdr and consume */
		return IPCHUB_E_INVALID;
	if (s->split.n) /* the rest of a batch or a multi-id ERROR */
		return sess_split_next(s, ev);
	rc = in_check_len(s, &total);
	if (rc)
		return rc;
	live = s->in.len - s->in.off;
	if (total == 0 || live < total) {
		ev->type = SESS_EV_NONE;
		return IPCHUB_OK;
	}

	frame = s->in.data + s->in.off + IPCHUB_LEN_PREFIX;
	mpr_init_buf(&r, &iov, frame, total - IPCHUB_LEN_PREFIX);
	if (frame_decode(&r, FRAME_B2C, h, &has_body, NULL) != WIRE_E_OK)
		return fail(s, IPCHUB_E_BAD_FRAME);
	batch = (h->kind == WIRE_SEND || h->kind == WIRE_PUBLISH) &&
		(h->has & FH(WK_FLAGS)) && (h->flags & WF_BATCH);
	if (batch && !has_body)
		return fail(s, IPCHUB_E_BAD_FRAME);
	if (has_body) {
		body_len = (size_t)mpr_left(&r);
		body = frame + (total - IPCHUB_LEN_PREFIX - body_len);
		if (batch ? frame_batch_check(&r, &n, NULL) != WIRE_E_OK
			  : frame_body_check(&r, NULL) != WIRE_E_OK)
			return fail(s, IPCHUB_E_BAD_FRAME);
	}
	/* An ERROR answering a batch stands for `count` errors. */
	if (h->kind == WIRE_ERROR && (h->has & FH(WK_COUNT))) {
		if (h->count == 0 || h->count > IPCHUB_MAX_BATCH)
			return fail(s, IPCHUB_E_BAD_FRAME);
		n = (uint32_t)h->count;
	}
	/* Ids id .. id + n - 1 must exist. */
	if (n > 1 && h->id > UINT64_MAX - (n - 1))
		return fail(s, IPCHUB_E_BAD_FRAME);

	/* Before WELCOME the broker may only finish or refuse the handshake. */
	if (s->state != SESS_READY && h->kind != WIRE_WELCOME &&
	    h->kind != WIRE_ERROR && h->kind != WIRE_BYE)
		return fail(s, IPCHUB_E_PROTOCOL);

	switch (h->kind) {
	case WIRE_WELCOME:
		if (s->state != SESS_HELLO_SENT)
			return fail(s, IPCHUB_E_PROTOCOL);
		rc = on_welcome(s, h);
		if (rc)
			return rc;
		e.type = SESS_EV_WELCOME;
		break;
	case WIRE_OK:
		e.type = SESS_EV_OK;
		e.id = h->id;
		break;
	case WIRE_PONG:
		e.type = SESS_EV_PONG;
		e.id = h->id;
		break;
	case WIRE_ERROR:
		/* Code 0 in an ERROR is meaningless; treat it as malformed
		 * so that "error" always means a non-zero code above. */
		if (h->code == 0)
			return fail(s, IPCHUB_E_BAD_FRAME);
		if (n > 1 && s->state == SESS_READY)
			return split_start(s, ev, n, 0, total);
		rc = msg_from_frame(h, NULL, 0, &e.msg);
		if (rc)
			return rc;
		e.type = SESS_EV_ERROR;
		e.id = h->id;
		e.code = (int)h->code;
		e.ref = (h->has & FH(WK_REF)) ? h->ref : 0;
		break;
	case WIRE_PRESENCE:
	case WIRE_PUBLISH:
	case WIRE_GAP:
	case WIRE_MONITOR:
		if (h->kind == WIRE_PRESENCE &&
		    (h->event == 0 || h->event >= WIRE_PRESENCE_EVENT_MAX_ ||
		     h->reason >= WIRE_REASON_MAX_))
			return fail(s, IPCHUB_E_BAD_FRAME);
		if (h->kind == WIRE_MONITOR && !has_body)
			return fail(s, IPCHUB_E_BAD_FRAME);
		if (batch)
			return split_start(s, ev, n,
					   (size_t)(body - s->in.data - s->in.off),
					   total);
		rc = sess_make_msg(s, h, body, body_len, &e.msg);
		if (rc)
			return rc;
		e.type = SESS_EV_MSG;
		e.id = h->id;
		break;
	case WIRE_SEND:
		if (batch)
			return split_start(s, ev, n,
					   (size_t)(body - s->in.data - s->in.off),
					   total);
		/* fall through */
	case WIRE_REQUEST:
	case WIRE_REPLY:
		rc = sess_make_msg(s, h, body, body_len, &e.msg);
		if (rc)
			return rc;
		e.type = SESS_EV_MSG;
		e.id = h->id;
		e.code = e.msg->code;
		break;
	case WIRE_BYE:
		e.type = SESS_EV_BYE;
		e.code = (h->has & FH(WK_CODE)) ? (int)h->code : 0;
		e.text = (h->has & FH(WK_MSG)) ? h->msg : NULL;
		break;
	default:
		/* frame_decode admits only broker-to-client kinds. */
		return fail(s, IPCHUB_E_BAD_FRAME);
	}

	if (!sess_lend_hold(s, total)) {
		s->in.off += total;
		if (s->in.off == s->in.len)
			s->in.off = s->in.len = 0;
	}
	if (e.type == SESS_EV_BYE)
		sess_kill(s, e.code ? e.code : IPCHUB_E_CLOSED);
	*ev = e;
	return IPCHUB_OK;
}
