/*
 * test_sess.c - unit tests of the client protocol state machine.
 *
 * Broker frames are built with the frame codec, fed to a session in one
 * chunk and byte by byte, and the two event streams must be identical.
 * Malformed or out-of-place broker frames must kill the session with the
 * documented code and keep it dead.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "frame.h"
#include "limits.h"
#include "msg.h"
#include "sess.h"

/* A growable byte string of encoded frames. */
struct bytes {
	uint8_t *p;
	size_t len;
};

static void put(struct bytes *b, const void *p, size_t n)
{
	b->p = realloc(b->p, b->len + n);
	assert_non_null(b->p);
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

static void put_frame(struct bytes *b, const struct frame_hdr *h,
		      const void *body, size_t len)
{
	uint8_t head[FRAME_ENC_MAX];
	size_t n = frame_encode(h, len, head, sizeof(head));

	put(b, head, n);
	if (len)
		put(b, body, len);
}

static void put_welcome(struct bytes *b, uint32_t max_frame)
{
	struct frame_hdr h;

	frame_init(&h, WIRE_WELCOME);
	h.ver = 1;
	h.conn = 17;
	h.max_frame = max_frame;
	h.has |= FH(WK_VER) | FH(WK_CONN) | FH(WK_MAX_FRAME);
	frame_set_str(&h, WK_BROKER, "0123456789abcdef0123456789abcdef", 32);
	put_frame(b, &h, NULL, 0);
}

static void ready_session(struct sess *s)
{
	struct bytes b = {0};
	struct sess_event ev;

	sess_init(s);
	assert_int_equal(sess_queue_hello(s, "test"), IPCHUB_OK);
	put_welcome(&b, IPCHUB_MAX_FRAME_DEFAULT);
	assert_int_equal(sess_feed(s, b.p, b.len), IPCHUB_OK);
	assert_int_equal(sess_next_event(s, &ev), IPCHUB_OK);
	assert_int_equal(ev.type, SESS_EV_WELCOME);
	free(b.p);
}

/* A flat record of an event, comparable with memcmp-free asserts. */
struct rec {
	int type;
	uint64_t id;
	int code;
	int kind;
	uint64_t from_id;
	uint32_t timeout;
	char from[64], to[64], text[64];
	uint8_t body[64];
	size_t body_len;
	bool has_body;
};

static void record(struct rec *r, const struct sess_event *ev)
{
	memset(r, 0, sizeof(*r));
	r->type = ev->type;
	r->id = ev->id;
	r->code = ev->code;
	if (ev->type == SESS_EV_BYE && ev->text)
		snprintf(r->text, sizeof(r->text), "%s", ev->text);
	if (ev->msg) {
		const ipchub_msg *m = ev->msg;
		const void *body = ipchub_msg_body(m, &r->body_len);

		r->kind = ipchub_msg_kind(m);
		r->from_id = ipchub_msg_from_id(m);
		r->timeout = ipchub_msg_timeout(m);
		if (ipchub_msg_from(m))
			snprintf(r->from, sizeof(r->from), "%s", ipchub_msg_from(m));
		if (ipchub_msg_to(m))
			snprintf(r->to, sizeof(r->to), "%s", ipchub_msg_to(m));
		if (m->errtext)
			snprintf(r->text, sizeof(r->text), "%s", m->errtext);
		r->has_body = body != NULL;
		assert_true(r->body_len <= sizeof(r->body));
		if (body)
			memcpy(r->body, body, r->body_len);
		ipchub_msg_free(ev->msg);
	}
}

static void assert_rec_equal(const struct rec *a, const struct rec *b)
{
	assert_int_equal(a->type, b->type);
	assert_int_equal(a->id, b->id);
	assert_int_equal(a->code, b->code);
	assert_int_equal(a->kind, b->kind);
	assert_int_equal(a->from_id, b->from_id);
	assert_int_equal(a->timeout, b->timeout);
	assert_string_equal(a->from, b->from);
	assert_string_equal(a->to, b->to);
	assert_string_equal(a->text, b->text);
	assert_int_equal(a->has_body, b->has_body);
	assert_int_equal(a->body_len, b->body_len);
	assert_memory_equal(a->body, b->body, a->body_len);
}

/* The broker side of a conversation covering every B2C kind. */
static void script(struct bytes *b)
{
	struct frame_hdr h;
	static const uint8_t body_map[] = {0x81, 0xa1, 'a', 0x01}; /* {"a":1} */
	static const uint8_t body_nil[] = {0xc0};

	put_welcome(b, IPCHUB_MAX_FRAME_DEFAULT);

	frame_init(&h, WIRE_OK);
	h.id = 1;
	h.has |= FH(WK_ID);
	put_frame(b, &h, NULL, 0);

	frame_init(&h, WIRE_PONG);
	h.id = 2;
	h.has |= FH(WK_ID);
	put_frame(b, &h, NULL, 0);

	frame_init(&h, WIRE_ERROR);
	h.id = 3;
	h.code = WIRE_E_NO_SUCH_PEER;
	h.ref = WIRE_SEND;
	h.has |= FH(WK_ID) | FH(WK_CODE) | FH(WK_REF);
	frame_set_str(&h, WK_TO, "nobody", 6);
	frame_set_str(&h, WK_MSG, "no connection owns the name 'nobody'", 36);
	put_frame(b, &h, NULL, 0);

	frame_init(&h, WIRE_SEND);
	h.id = 40;
	h.from_id = 9;
	h.has |= FH(WK_ID) | FH(WK_FROM_ID);
	frame_set_str(&h, WK_TO, "svc", 3);
	frame_set_str(&h, WK_FROM, "client.a", 8);
	put_frame(b, &h, body_map, sizeof(body_map));

	frame_init(&h, WIRE_SEND); /* no body at all */
	h.id = 41;
	h.from_id = 9;
	h.has |= FH(WK_ID) | FH(WK_FROM_ID);
	frame_set_str(&h, WK_TO, "svc", 3);
	put_frame(b, &h, NULL, 0);

	frame_init(&h, WIRE_REQUEST);
	h.id = 42;
	h.from_id = 10;
	h.timeout = 250;
	h.has |= FH(WK_ID) | FH(WK_FROM_ID) | FH(WK_TIMEOUT);
	frame_set_str(&h, WK_TO, "svc", 3);
	put_frame(b, &h, body_nil, sizeof(body_nil));

	frame_init(&h, WIRE_REPLY);
	h.id = 5;
	h.from_id = 11;
	h.code = WIRE_E_REMOTE_ERROR;
	h.has |= FH(WK_ID) | FH(WK_FROM_ID) | FH(WK_CODE);
	frame_set_str(&h, WK_FROM, "svc.db", 6);
	frame_set_str(&h, WK_MSG, "disk full", 9);
	put_frame(b, &h, NULL, 0);

	frame_init(&h, WIRE_BYE);
	h.code = WIRE_E_SHUTTING_DOWN;
	h.has |= FH(WK_CODE);
	frame_set_str(&h, WK_MSG, "bye", 3);
	put_frame(b, &h, NULL, 0);
}

#define MAX_EVENTS 16

/* Feed b in pieces of `step` bytes (0: all at once), collecting events. */
static size_t run_script(const struct bytes *b, size_t step, struct rec *out)
{
	struct sess s;
	size_t n = 0, off = 0;

	sess_init(&s);
	assert_int_equal(sess_queue_hello(&s, NULL), IPCHUB_OK);
	while (off < b->len) {
		size_t k = step ? step : b->len - off;
		struct sess_event ev;

		if (k > b->len - off)
			k = b->len - off;
		assert_int_equal(sess_feed(&s, b->p + off, k), IPCHUB_OK);
		off += k;
		for (;;) {
			int rc = sess_next_event(&s, &ev);

			if (rc) {
				/* Only after BYE: the session is then dead. */
				assert_int_equal(rc, IPCHUB_E_SHUTTING_DOWN);
				assert_int_equal(off, b->len);
				break;
			}
			if (ev.type == SESS_EV_NONE)
				break;
			assert_true(n < MAX_EVENTS);
			record(&out[n++], &ev);
		}
	}
	assert_int_equal(s.state, SESS_DEAD);
	assert_int_equal(s.dead, IPCHUB_E_SHUTTING_DOWN);
	assert_int_equal(s.conn, 17);
	assert_int_equal(s.max_frame, IPCHUB_MAX_FRAME_DEFAULT);
	sess_destroy(&s);
	return n;
}

static void test_events_chunk_vs_bytes(void **state)
{
	struct bytes b = {0};
	struct rec whole[MAX_EVENTS], bytewise[MAX_EVENTS], sevens[MAX_EVENTS];
	size_t n1, n2, n3;

	(void)state;
	script(&b);
	n1 = run_script(&b, 0, whole);
	n2 = run_script(&b, 1, bytewise);
	n3 = run_script(&b, 7, sevens);
	assert_int_equal(n1, 9);
	assert_int_equal(n2, n1);
	assert_int_equal(n3, n1);
	for (size_t i = 0; i < n1; i++) {
		assert_rec_equal(&whole[i], &bytewise[i]);
		assert_rec_equal(&whole[i], &sevens[i]);
	}

	assert_int_equal(whole[0].type, SESS_EV_WELCOME);
	assert_int_equal(whole[1].type, SESS_EV_OK);
	assert_int_equal(whole[1].id, 1);
	assert_int_equal(whole[2].type, SESS_EV_PONG);
	assert_int_equal(whole[2].id, 2);
	assert_int_equal(whole[3].type, SESS_EV_ERROR);
	assert_int_equal(whole[3].code, IPCHUB_E_NO_SUCH_PEER);
	assert_int_equal(whole[3].kind, 10);
	assert_string_equal(whole[3].to, "nobody");
	assert_string_equal(whole[3].text, "no connection owns the name 'nobody'");
	assert_int_equal(whole[4].type, SESS_EV_MSG);
	assert_int_equal(whole[4].kind, IPCHUB_KIND_SEND);
	assert_string_equal(whole[4].from, "client.a");
	assert_int_equal(whole[4].from_id, 9);
	assert_int_equal(whole[4].body_len, 4);
	assert_false(whole[5].has_body);
	assert_int_equal(whole[6].kind, IPCHUB_KIND_REQUEST);
	assert_int_equal(whole[6].timeout, 250);
	assert_int_equal(whole[6].body_len, 1);
	assert_int_equal(whole[7].kind, IPCHUB_KIND_REPLY);
	assert_int_equal(whole[7].code, IPCHUB_E_REMOTE_ERROR);
	assert_string_equal(whole[7].text, "disk full");
	assert_int_equal(whole[8].type, SESS_EV_BYE);
	assert_int_equal(whole[8].code, IPCHUB_E_SHUTTING_DOWN);
	assert_string_equal(whole[8].text, "bye");
	free(b.p);
}

static void test_hello_encoding(void **state)
{
	struct sess s;
	struct frame_hdr h;
	struct iovec iov;
	struct mpr r;
	const uint8_t *p;
	size_t len;
	bool has_body;

	(void)state;
	sess_init(&s);
	assert_int_equal(sess_next_id(&s), 1);
	assert_int_equal(sess_next_id(&s), 2);
	assert_int_equal(sess_queue_hello(&s, "agent/1"), IPCHUB_OK);
	assert_int_equal(sess_queue_hello(&s, "agent/1"), IPCHUB_E_PROTOCOL);
	p = sess_out_data(&s, &len);
	assert_true(len > 4);
	assert_int_equal(frame_get_len(p), len - 4);
	mpr_init_buf(&r, &iov, p + 4, len - 4);
	assert_int_equal(frame_decode(&r, FRAME_C2B, &h, &has_body, NULL), 0);
	assert_int_equal(h.kind, WIRE_HELLO);
	assert_int_equal(h.ver, IPCHUB_PROTO_VERSION_MAX);
	assert_int_equal(h.ver_min, IPCHUB_PROTO_VERSION_MIN);
	assert_string_equal(h.agent, "agent/1");
	assert_false(has_body);
	sess_out_consume(&s, 3);
	assert_int_equal(sess_out_len(&s), len - 3);
	sess_out_consume(&s, len - 3);
	assert_int_equal(sess_out_len(&s), 0);
	sess_destroy(&s);
}

static void test_queue_limits(void **state)
{
	struct sess s;
	struct frame_hdr h;
	uint8_t *big;
	size_t len;

	(void)state;
	sess_init(&s);
	frame_init(&h, WIRE_PING);
	h.id = 1;
	h.has |= FH(WK_ID);
	/* Nothing but HELLO before the handshake starts. */
	assert_int_equal(sess_queue_frame(&s, &h, NULL, 0), IPCHUB_E_PROTOCOL);
	sess_destroy(&s);

	ready_session(&s);
	sess_out_consume(&s, sess_out_len(&s));
	big = calloc(1, IPCHUB_MAX_FRAME_DEFAULT);
	assert_non_null(big);
	big[0] = 0xc6; /* bin32 header; content irrelevant to the size check */
	frame_init(&h, WIRE_SEND);
	h.id = 1;
	h.has |= FH(WK_ID);
	frame_set_str(&h, WK_TO, "x", 1);
	assert_int_equal(sess_queue_frame(&s, &h, big, IPCHUB_MAX_FRAME_DEFAULT),
			 IPCHUB_E_TOO_LARGE);
	assert_int_equal(sess_out_len(&s), 0);
	assert_int_equal(sess_queue_frame(&s, &h, big, 1000), IPCHUB_OK);
	sess_out_data(&s, &len);
	assert_true(len > 1000);
	free(big);
	sess_destroy(&s);
}

/* The outbound queue under interleaved queueing and partial consumption,
 * with frames from a few bytes to 300 KiB (exercising compaction and
 * growth): the bytes taken out are exactly the frames queued, in order,
 * and the buffer stays within four times the most it ever held live. */
static void test_out_queue_order(void **state)
{
	struct sess s;
	struct frame_hdr h;
	struct bytes want = {0}, got = {0};
	uint8_t *body = malloc(300 * 1024);
	size_t most = 0;
	uint32_t rnd = 12345;

	(void)state;
	assert_non_null(body);
	ready_session(&s);
	sess_out_consume(&s, sess_out_len(&s));
	frame_init(&h, WIRE_SEND);
	h.has |= FH(WK_ID);
	frame_set_str(&h, WK_TO, "sink", 4);
	for (int i = 0; i < 400; i++) {
		size_t len, n, take;
		const uint8_t *p;

		rnd = rnd * 1103515245u + 12345u;
		len = (rnd >> 8) % 8 == 0 ? 65536 + (rnd >> 4) % (235 * 1024)
					   : 2 + (rnd >> 4) % 2000;
		/* bin32 of len - 5 bytes, filled with the frame number. */
		len = len < 6 ? 6 : len;
		body[0] = 0xc6;
		body[1] = (uint8_t)((len - 5) >> 24);
		body[2] = (uint8_t)((len - 5) >> 16);
		body[3] = (uint8_t)((len - 5) >> 8);
		body[4] = (uint8_t)(len - 5);
		memset(body + 5, i & 0xff, len - 5);
		h.id = (uint64_t)i;
		assert_int_equal(sess_queue_frame(&s, &h, body, len), IPCHUB_OK);
		put_frame(&want, &h, body, len);
		if (sess_out_len(&s) > most)
			most = sess_out_len(&s);
		assert_true(s.out.cap <= 4 * most || s.out.cap <= 4096);
		/* Take out a varying share, sometimes nothing. */
		p = sess_out_data(&s, &n);
		take = (rnd >> 3) % 3 == 0 ? 0 : (size_t)(rnd % (n + 1));
		if (take) {
			put(&got, p, take);
			sess_out_consume(&s, take);
		}
	}
	{
		size_t n;
		const uint8_t *p = sess_out_data(&s, &n);

		put(&got, p, n);
		sess_out_consume(&s, n);
	}
	assert_int_equal(got.len, want.len);
	assert_memory_equal(got.p, want.p, want.len);
	assert_int_equal(sess_out_len(&s), 0);
	free(want.p);
	free(got.p);
	free(body);
	sess_destroy(&s);
}

/* Feed raw bytes to a session (ready or not) and expect it to die. */
static void expect_fatal(bool ready, const void *bytes, size_t n, int code)
{
	struct sess s;
	struct sess_event ev = {.type = SESS_EV_NONE};
	int rc;

	if (ready) {
		ready_session(&s);
	} else {
		sess_init(&s);
		assert_int_equal(sess_queue_hello(&s, NULL), IPCHUB_OK);
	}
	rc = sess_feed(&s, bytes, n);
	if (rc == IPCHUB_OK)
		rc = sess_next_event(&s, &ev);
	assert_int_equal(rc, code);
	assert_int_equal(ev.type, SESS_EV_NONE); /* untouched */
	assert_int_equal(s.state, SESS_DEAD);
	assert_int_equal(sess_next_event(&s, &ev), code);
	assert_int_equal(sess_feed(&s, "x", 1), code);
	sess_destroy(&s);
}

static void expect_fatal_frame(bool ready, const struct frame_hdr *h,
			       const void *body, size_t len, int code)
{
	struct bytes b = {0};

	put_frame(&b, h, body, len);
	expect_fatal(ready, b.p, b.len, code);
	free(b.p);
}

static void test_malformed(void **state)
{
	struct frame_hdr h;
	static const uint8_t short_len[] = {0, 0, 0, 2, 0x81, 0x00};
	static const uint8_t not_map[] = {0, 0, 0, 3, 0x93, 0x01, 0x02};
	static const uint8_t unknown_key[] = {0, 0, 0, 7, 0x82, 0x00, 0x09,
					      0x7f, 0x01, 0x00, 0x00};
	static const uint8_t huge_pre[] = {0, 0, 0x20, 0x00};  /* 8 KiB */
	static const uint8_t huge_post[] = {0x10, 0, 0, 0};     /* 256 MiB */
	static const uint8_t bad_body[] = {0xc1};
	static const uint8_t two_values[] = {0x01, 0x02};

	(void)state;
	expect_fatal(true, short_len, sizeof(short_len), IPCHUB_E_BAD_FRAME);
	expect_fatal(true, not_map, sizeof(not_map), IPCHUB_E_BAD_FRAME);
	expect_fatal(true, unknown_key, sizeof(unknown_key), IPCHUB_E_BAD_FRAME);
	/* Lengths are checked before anything else is buffered. */
	expect_fatal(false, huge_pre, sizeof(huge_pre), IPCHUB_E_TOO_LARGE);
	expect_fatal(true, huge_post, sizeof(huge_post), IPCHUB_E_TOO_LARGE);

	/* A client-to-broker kind coming from the broker. */
	frame_init(&h, WIRE_PING);
	h.id = 1;
	h.has |= FH(WK_ID);
	expect_fatal_frame(true, &h, NULL, 0, IPCHUB_E_BAD_FRAME);

	/* A body where the kind allows none. */
	frame_init(&h, WIRE_OK);
	h.id = 1;
	h.has |= FH(WK_ID);
	expect_fatal_frame(true, &h, two_values, 1, IPCHUB_E_BAD_FRAME);

	/* Missing required key (SEND from the broker needs from_id). */
	frame_init(&h, WIRE_SEND);
	h.id = 1;
	h.has |= FH(WK_ID);
	frame_set_str(&h, WK_TO, "svc", 3);
	expect_fatal_frame(true, &h, NULL, 0, IPCHUB_E_BAD_FRAME);

	/* Malformed bodies: the broker validates them, so this is a bug. */
	h.from_id = 2;
	h.has |= FH(WK_FROM_ID);
	expect_fatal_frame(true, &h, bad_body, sizeof(bad_body),
			   IPCHUB_E_BAD_FRAME);
	expect_fatal_frame(true, &h, two_values, sizeof(two_values),
			   IPCHUB_E_BAD_FRAME);

	/* A message before the handshake completes. */
	expect_fatal_frame(false, &h, NULL, 0, IPCHUB_E_PROTOCOL);

	/* ERROR with code 0. */
	frame_init(&h, WIRE_ERROR);
	h.id = 1;
	h.code = 0;
	h.has |= FH(WK_ID) | FH(WK_CODE);
	expect_fatal_frame(true, &h, NULL, 0, IPCHUB_E_BAD_FRAME);
}

static void test_bad_welcome(void **state)
{
	struct bytes b = {0};

	(void)state;
	/* A second WELCOME. */
	put_welcome(&b, IPCHUB_MAX_FRAME_DEFAULT);
	expect_fatal(true, b.p, b.len, IPCHUB_E_PROTOCOL);
	free(b.p);

	/* max_frame outside what any broker may announce. */
	b = (struct bytes){0};
	put_welcome(&b, 100);
	expect_fatal(false, b.p, b.len, IPCHUB_E_BAD_FRAME);
	free(b.p);
}

static void test_handshake_error(void **state)
{
	struct sess s;
	struct frame_hdr h;
	struct bytes b = {0};
	struct sess_event ev;

	(void)state;
	sess_init(&s);
	assert_int_equal(sess_queue_hello(&s, NULL), IPCHUB_OK);
	frame_init(&h, WIRE_ERROR);
	h.id = 0;
	h.code = WIRE_E_UNSUPPORTED_VERSION;
	h.has |= FH(WK_ID) | FH(WK_CODE);
	frame_set_str(&h, WK_MSG, "this broker speaks version 1", 28);
	put_frame(&b, &h, NULL, 0);
	assert_int_equal(sess_feed(&s, b.p, b.len), IPCHUB_OK);
	assert_int_equal(sess_next_event(&s, &ev), IPCHUB_OK);
	assert_int_equal(ev.type, SESS_EV_ERROR);
	assert_int_equal(ev.code, IPCHUB_E_UNSUPPORTED_VERSION);
	assert_string_equal(ipchub_msg_error_text(ev.msg),
			    "this broker speaks version 1");
	ipchub_msg_free(ev.msg);
	assert_int_equal(sess_next_event(&s, &ev), IPCHUB_OK);
	assert_int_equal(ev.type, SESS_EV_NONE);
	sess_destroy(&s);
	free(b.p);
}

/* A frame larger than one read chunk is assembled across reads. */
static void test_large_frame(void **state)
{
	struct sess s;
	struct frame_hdr h;
	struct bytes b = {0};
	struct sess_event ev;
	size_t blen = 3 * SESS_READ_CHUNK, off = 0;
	uint8_t *body = malloc(blen + 5);

	(void)state;
	assert_non_null(body);
	body[0] = 0xc6; /* bin32 */
	body[1] = (uint8_t)(blen >> 24);
	body[2] = (uint8_t)(blen >> 16);
	body[3] = (uint8_t)(blen >> 8);
	body[4] = (uint8_t)blen;
	memset(body + 5, 'z', blen);
	frame_init(&h, WIRE_SEND);
	h.id = 1;
	h.from_id = 1;
	h.has |= FH(WK_ID) | FH(WK_FROM_ID);
	frame_set_str(&h, WK_TO, "svc", 3);
	put_frame(&b, &h, body, blen + 5);

	ready_session(&s);
	while (off < b.len) {
		uint8_t *p;
		size_t cap;

		assert_int_equal(sess_in_space(&s, &p, &cap), IPCHUB_OK);
		assert_true(cap >= SESS_READ_CHUNK);
		if (cap > b.len - off)
			cap = b.len - off;
		if (cap > 10000)
			cap = 10000; /* short reads */
		memcpy(p, b.p + off, cap);
		sess_in_commit(&s, cap);
		off += cap;
		assert_int_equal(sess_next_event(&s, &ev), IPCHUB_OK);
		if (off < b.len)
			assert_int_equal(ev.type, SESS_EV_NONE);
	}
	assert_int_equal(ev.type, SESS_EV_MSG);
	assert_int_equal(ev.msg->body_len, blen + 5);
	assert_memory_equal(ev.msg->body, body, blen + 5);
	ipchub_msg_free(ev.msg);
	sess_destroy(&s);
	free(body);
	free(b.p);
}

/* A stream of 64 KiB frames read in chunks as large as the session
 * offers: every frame arrives intact, and the inbound buffer is compacted
 * (its live bytes moved to the front) at most once per two frames, not
 * once per frame as when it compacted whenever its tail was short, while
 * it stays within SESS_IN_KEEP. */
static void test_inbound_compaction(void **state)
{
	enum { FRAMES = 60 };
	struct sess s;
	struct frame_hdr h;
	struct bytes b = {0};
	size_t blen = 65536 - 5, off = 0, moves = 0, got = 0;
	uint8_t *body = malloc(blen + 5);

	(void)state;
	assert_non_null(body);
	body[0] = 0xc6;
	body[1] = (uint8_t)(blen >> 24);
	body[2] = (uint8_t)(blen >> 16);
	body[3] = (uint8_t)(blen >> 8);
	body[4] = (uint8_t)blen;
	frame_init(&h, WIRE_SEND);
	h.from_id = 1;
	h.has |= FH(WK_ID) | FH(WK_FROM_ID);
	frame_set_str(&h, WK_TO, "svc", 3);
	for (int i = 0; i < FRAMES; i++) {
		h.id = (uint64_t)i + 1;
		memset(body + 5, 'a' + i % 26, blen);
		put_frame(&b, &h, body, blen + 5);
	}
	ready_session(&s);
	while (off < b.len) {
		struct sess_event ev;
		uint8_t *p;
		size_t cap, before = s.in.off, live = s.in.len - s.in.off;

		assert_int_equal(sess_in_space(&s, &p, &cap), IPCHUB_OK);
		if (live > 0 && before > 0 && s.in.off == 0)
			moves++;
		assert_true(s.in.cap <= 4 * SESS_READ_CHUNK + 2 * 65536);
		if (cap > b.len - off)
			cap = b.len - off;
		memcpy(p, b.p + off, cap);
		sess_in_commit(&s, cap);
		off += cap;
		for (;;) {
			assert_int_equal(sess_next_event(&s, &ev), IPCHUB_OK);
			if (ev.type == SESS_EV_NONE)
				break;
			assert_int_equal(ev.type, SESS_EV_MSG);
			assert_int_equal(ev.msg->id, got + 1);
			assert_int_equal(ev.msg->body_len, blen + 5);
			assert_int_equal(ev.msg->body[5], 'a' + got % 26);
			assert_int_equal(ev.msg->body[blen + 4], 'a' + got % 26);
			ipchub_msg_free(ev.msg);
			got++;
		}
	}
	assert_int_equal(got, FRAMES);
	if (moves > FRAMES / 2)
		fail_msg("inbound buffer compacted %zu times for %d frames",
			 moves, FRAMES);
	sess_destroy(&s);
	free(body);
	free(b.p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_events_chunk_vs_bytes),
		cmocka_unit_test(test_hello_encoding),
		cmocka_unit_test(test_queue_limits),
		cmocka_unit_test(test_out_queue_order),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_bad_welcome),
		cmocka_unit_test(test_handshake_error),
		cmocka_unit_test(test_large_frame),
		cmocka_unit_test(test_inbound_compaction),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
