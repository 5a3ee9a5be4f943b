/*
 * test_batch.c - unit tests of batched SENDs in the client session
 * (client/batch.c, PROTOCOL.md 6.3.1).
 *
 * Inbound: crafted broker bytes (batched SENDs, ERRORs with `count`,
 * malformed batches) are fed to a ready session and the events compared
 * with what each message must look like on its own. Outbound: sends are
 * queued with sess_queue_send() and the outbound bytes compared exactly
 * with an independently encoded batch, then decoded with frame_decode()
 * and frame_batch_check(); each condition that must close the open frame
 * is shown to start a new one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "batch.h"
#include "frame.h"
#include "lend.h"
#include "limits.h"
#include "msg.h"
#include "sess.h"

struct bytes {
	uint8_t *p;
	size_t len;
};

static void put(struct bytes *b, const void *p, size_t n)
{
	b->p = realloc(b->p, b->len + n + 1);
	assert_non_null(b->p);
	if (n)
		memcpy(b->p + b->len, p, n);
	b->len += n;
}

static void put_frame(struct bytes *b, const struct frame_hdr *h,
		      const void *body, size_t len)
{
	uint8_t head[FRAME_ENC_MAX];
	size_t n = frame_encode(h, len, head, sizeof(head));

	put(b, head, n);
	put(b, body, len);
}

static void put_welcome_flags(struct bytes *b, uint32_t flags)
{
	struct frame_hdr h;

	frame_init(&h, WIRE_WELCOME);
	h.ver = 1;
	h.conn = 17;
	h.max_frame = IPCHUB_MAX_FRAME_DEFAULT;
	h.has |= FH(WK_VER) | FH(WK_CONN) | FH(WK_MAX_FRAME);
	if (flags) {
		h.flags = flags;
		h.has |= FH(WK_FLAGS);
	}
	frame_set_str(&h, WK_BROKER, "0123456789abcdef0123456789abcdef", 32);
	put_frame(b, &h, NULL, 0);
}

/* A session past WELCOME (with or without BATCH) whose HELLO is still in
 * the outbound buffer: *hello_len bytes. */
static void ready_flags(struct sess *s, uint32_t flags, size_t *hello_len)
{
	struct bytes b = {0};
	struct sess_event ev;

	sess_init(s);
	assert_int_equal(sess_queue_hello(s, "test"), IPCHUB_OK);
	*hello_len = sess_out_len(s);
	put_welcome_flags(&b, flags);
	assert_int_equal(sess_feed(s, b.p, b.len), IPCHUB_OK);
	assert_int_equal(sess_next_event(s, &ev), IPCHUB_OK);
	assert_int_equal(ev.type, SESS_EV_WELCOME);
	assert_int_equal(s->batch_ok, (flags & WF_BATCH) != 0);
	assert_int_equal(s->pub_batch_ok,
			 (flags & (WF_BATCH | WF_PUB_BATCH)) ==
				 (WF_BATCH | WF_PUB_BATCH));
	free(b.p);
}

static void ready(struct sess *s, bool batch, size_t *hello_len)
{
	ready_flags(s, batch ? WF_BATCH : 0, hello_len);
}

/* ---- inbound ---------------------------------------------------------- */

/* Element bodies of every shape: fixint, nil, str, bin 3000, map, nested
 * array, a 70000-byte bin (32-bit lengths), float, then one of each other
 * msgpack format (the splitter measures scalars itself). */
#define N_BODIES 29
static struct bytes bodies[N_BODIES];

static void make_bodies(void)
{
	static const uint8_t fix[] = {0x07};
	static const uint8_t nil[] = {0xc0};
	static const uint8_t str[] = {0xa5, 'h', 'e', 'l', 'l', 'o'};
	static const uint8_t map[] = {0x82, 0xa1, 'a', 0x01, 0xa1, 'b',
				      0x92, 0xc3, 0xc2};
	static const uint8_t nest[] = {0x91, 0x91, 0x91, 0x90};
	static const uint8_t dbl[] = {0xcb, 0x40, 0x09, 0x21, 0xfb,
				      0x54, 0x44, 0x2d, 0x18};
	uint8_t hd[5];

	memset(bodies, 0, sizeof(bodies));
	put(&bodies[0], fix, sizeof(fix));
	put(&bodies[1], nil, sizeof(nil));
	put(&bodies[2], str, sizeof(str));
	hd[0] = 0xc5;
	hd[1] = 3000 >> 8;
	hd[2] = 3000 & 0xff;
	put(&bodies[3], hd, 3);
	for (int i = 0; i < 3000; i++)
		put(&bodies[3], &(uint8_t){(uint8_t)i}, 1);
	put(&bodies[4], map, sizeof(map));
	put(&bodies[5], nest, sizeof(nest));
	hd[0] = 0xc6;
	frame_put_len(hd + 1, 70000);
	put(&bodies[6], hd, 5);
	for (int i = 0; i < 70000; i++)
		put(&bodies[6], &(uint8_t){(uint8_t)(i * 7)}, 1);
	put(&bodies[7], dbl, sizeof(dbl));
	{
		static const uint8_t more[][20] = {
			{1, 0xff},                         /* -1 */
			{1, 0xc2}, {1, 0xc3},              /* false, true */
			{2, 0xcc, 0x80}, {3, 0xcd, 1, 2},  /* uint 8, 16 */
			{5, 0xce, 1, 2, 3, 4},             /* uint 32 */
			{9, 0xcf, 1, 2, 3, 4, 5, 6, 7, 8}, /* uint 64 */
			{2, 0xd0, 0x80}, {3, 0xd1, 0x80, 0},
			{5, 0xd2, 0x80, 0, 0, 0},
			{9, 0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0},
			{5, 0xca, 0x3f, 0x80, 0, 0},       /* float 32 */
			{3, 0xd4, 1, 9}, {4, 0xd5, 1, 9, 9}, /* fixext 1, 2 */
			{6, 0xd6, 1, 9, 9, 9, 9},
			{10, 0xd7, 1, 9, 9, 9, 9, 9, 9, 9, 9},
			{18, 0xd8, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13,
			 14, 15, 16},                      /* fixext 16 */
			{4, 0xc7, 1, 5, 0xaa},             /* ext 8 */
			{4, 0xd9, 2, 'h', 'i'},            /* str 8 */
			{7, 0xdb, 0, 0, 0, 2, 'h', 'i'},   /* str 32 */
			{5, 0xde, 0, 1, 0x01, 0x02},       /* map 16 */
		};

		for (size_t i = 0; i < sizeof(more) / sizeof(more[0]); i++)
			put(&bodies[8 + i], more[i] + 1, more[i][0]);
	}
}

static void free_bodies(void)
{
	for (int i = 0; i < N_BODIES; i++)
		free(bodies[i].p);
}

/* The array header in one of msgpack's three encodings. */
static void put_array_hdr(struct bytes *b, uint32_t n, int form)
{
	uint8_t h[5];

	if (form == 0 && n < 16) {
		h[0] = (uint8_t)(0x90 | n);
		put(b, h, 1);
	} else if (form == 1 && n < 65536) {
		h[0] = 0xdc;
		h[1] = (uint8_t)(n >> 8);
		h[2] = (uint8_t)n;
		put(b, h, 3);
	} else {
		h[0] = 0xdd;
		frame_put_len(h + 1, n);
		put(b, h, 5);
	}
}

static void broker_send_hdr(struct frame_hdr *h, uint64_t id, uint32_t flags)
{
	frame_init(h, WIRE_SEND);
	h->id = id;
	h->from_id = 3;
	h->uid = 1000;
	h->key_len = 32;
	memset(h->key, 0x5a, 32);
	h->has |= FH(WK_ID) | FH(WK_FROM_ID) | FH(WK_UID) | FH(WK_KEY);
	frame_set_str(h, WK_TO, "b", 1);
	frame_set_str(h, WK_FROM, "a", 1);
	if (flags) {
		h->flags = flags;
		h->has |= FH(WK_FLAGS);
	}
}

/* A batched SEND from the broker carrying bodies[0..n) (cycling), first
 * id `id`, array header in encoding `form`. */
static void put_batch(struct bytes *out, uint64_t id, uint32_t n, int form)
{
	struct frame_hdr h;
	struct bytes body = {0};

	put_array_hdr(&body, n, form);
	for (uint32_t i = 0; i < n; i++)
		put(&body, bodies[i % N_BODIES].p, bodies[i % N_BODIES].len);
	broker_send_hdr(&h, id, WF_BATCH);
	put_frame(out, &h, body.p, body.len);
	free(body.p);
}

static void expect_msg(struct sess *s, uint64_t id, uint32_t i)
{
	struct sess_event ev;
	const void *p;
	size_t len;

	assert_int_equal(sess_next_event(s, &ev), IPCHUB_OK);
	assert_int_equal(ev.type, SESS_EV_MSG);
	assert_int_equal(ev.id, id);
	assert_int_equal(ipchub_msg_id(ev.msg), id);
	assert_int_equal(ipchub_msg_kind(ev.msg), IPCHUB_KIND_SEND);
	assert_string_equal(ipchub_msg_from(ev.msg), "a");
	assert_string_equal(ipchub_msg_to(ev.msg), "b");
	assert_int_equal(ipchub_msg_from_id(ev.msg), 3);
	assert_int_equal(ipchub_msg_uid(ev.msg), 1000);
	p = ipchub_msg_key_id(ev.msg, &len);
	assert_int_equal(len, 32);
	assert_memory_equal(p, (const uint8_t[32]){[0 ... 31] = 0x5a}, 32);
	p = ipchub_msg_body(ev.msg, &len);
	assert_int_equal(len, bodies[i % N_BODIES].len);
	assert_memory_equal(p, bodies[i % N_BODIES].p, len);
	ipchub_msg_free(ev.msg);
}

static void expect_none(struct sess *s)
{
	struct sess_event ev;

	assert_int_equal(sess_next_event(s, &ev), IPCHUB_OK);
	assert_int_equal(ev.type, SESS_EV_NONE);
}

static void test_split_batch(void **state)
{
	struct sess s;
	struct bytes b = {0};
	struct frame_hdr h;
	static const uint8_t one[] = {0x2a};
	size_t hl;

	(void)state;
	for (int form = 0; form < 3; form++) {
		uint32_t n = form == 0 ? 15 : 2 * N_BODIES + 3;

		ready(&s, true, &hl);
		b.len = 0;
		put_batch(&b, 40, n, form);
		/* A plain SEND after it keeps its own id. */
		broker_send_hdr(&h, 900, 0);
		put_frame(&b, &h, one, sizeof(one));
		assert_int_equal(sess_feed(&s, b.p, b.len), IPCHUB_OK);
		for (uint32_t i = 0; i < n; i++)
			expect_msg(&s, 40 + i, i);
		{
			struct sess_event ev;

			assert_int_equal(sess_next_event(&s, &ev), IPCHUB_OK);
			assert_int_equal(ev.type, SESS_EV_MSG);
			assert_int_equal(ev.id, 900);
			ipchub_msg_free(ev.msg);
		}
		expect_none(&s);
		assert_int_equal(s.in.len - s.in.off, 0);
		sess_destroy(&s);
	}

	/* Fed one byte at a time: nothing until the whole frame is there. */
	ready(&s, true, &hl);
	b.len = 0;
	put_batch(&b, 7, 3, 2);
	for (size_t i = 0; i < b.len; i++) {
		assert_int_equal(sess_feed(&s, b.p + i, 1), IPCHUB_OK);
		if (i + 1 < b.len)
			expect_none(&s);
	}
	for (uint32_t i = 0; i < 3; i++)
		expect_msg(&s, 7 + i, i);
	expect_none(&s);
	sess_destroy(&s);

	/* A batch of one. */
	ready(&s, true, &hl);
	b.len = 0;
	put_batch(&b, 5, 1, 0);
	assert_int_equal(sess_feed(&s, b.p, b.len), IPCHUB_OK);
	expect_msg(&s, 5, 0);
	expect_none(&s);
	sess_destroy(&s);
	free(b.p);
}

/* The cursor is an offset from the frame's start: compacting (or moving)
 * the inbound buffer between two elements must not disturb it. */
static void test_split_survives_compaction(void **state)
{
	struct sess s;
	struct bytes b = {0};
	struct frame_hdr h;
	struct sess_event ev;
	uint8_t *p;
	size_t cap, hl;

	(void)state;
	ready(&s, true, &hl);
	/* An OK first, so the batch does not start at offset 0. */
	frame_init(&h, WIRE_OK);
	h.id = 1;
	h.has |= FH(WK_ID);
	put_frame(&b, &h, NULL, 0);
	put_batch(&b, 100, 6, 2);
	assert_int_equal(sess_feed(&s, b.p, b.len), IPCHUB_OK);
	assert_int_equal(sess_next_event(&s, &ev), IPCHUB_OK);
	assert_int_equal(ev.type, SESS_EV_OK);
	expect_msg(&s, 100, 0);
	expect_msg(&s, 101, 1);
	assert_true(s.in.off > 0);
	/* Asking for a read chunk compacts the buffer (and may move it). */
	assert_int_equal(sess_in_space(&s, &p, &cap), IPCHUB_OK);
	assert_int_equal(s.in.off, 0);
	assert_true(cap >= SESS_READ_CHUNK);
	/* Scribble over the room offered: it is not part of the frame. */
	memset(p, 0xc1, cap);
	for (uint32_t i = 2; i < 6; i++)
		expect_msg(&s, 100 + i, i);
	expect_none(&s);
	sess_destroy(&s);
	free(b.p);
}

static void test_split_back_to_back(void **state)
{
	/* After the last element the frame is consumed and the next frame
	 * decodes normally; a new batch after a finished one starts fresh. */
	struct sess s;
	struct bytes b = {0};
	size_t hl;

	(void)state;
	ready(&s, true, &hl);
	put_batch(&b, 1, 2, 0);
	put_batch(&b, 3, 2, 1);
	assert_int_equal(sess_feed(&s, b.p, b.len), IPCHUB_OK);
	for (uint32_t i = 0; i < 2; i++)
		expect_msg(&s, 1 + i, i);
	for (uint32_t i = 0; i < 2; i++)
		expect_msg(&s, 3 + i, i);
	expect_none(&s);
	sess_destroy(&s);
	free(b.p);
}

static void put_error(struct bytes *b, uint64_t id, bool has_count,
		      uint64_t count)
{
	struct frame_hdr h;

	frame_init(&h, WIRE_ERROR);
	h.id = id;
	h.code = WIRE_E_NO_SUCH_PEER;
	h.ref = WIRE_SEND;
	h.has |= FH(WK_ID) | FH(WK_CODE) | FH(WK_REF);
	frame_set_str(&h, WK_TO, "nobody", 6);
	frame_set_str(&h, WK_MSG, "no owner", 8);
	if (has_count) {
		h.count = count;
		h.has |= FH(WK_COUNT);
	}
	put_frame(b, &h, NULL, 0);
}

static void expect_error(struct sess *s, uint64_t id)
{
	struct sess_event ev;

	assert_int_equal(sess_next_event(s, &ev), IPCHUB_OK);
	assert_int_equal(ev.type, SESS_EV_ERROR);
	assert_int_equal(ev.id, id);
	assert_int_equal(ev.code, IPCHUB_E_NO_SUCH_PEER);
	assert_int_equal(ev.ref, WIRE_SEND);
	assert_int_equal(ipchub_msg_id(ev.msg), id);
	assert_int_equal(ipchub_msg_error(ev.msg), IPCHUB_E_NO_SUCH_PEER);
	assert_string_equal(ipchub_msg_to(ev.msg), "nobody");
	assert_string_equal(ipchub_msg_error_text(ev.msg), "no owner");
	ipchub_msg_free(ev.msg);
}

static void test_error_count(void **state)
{
	struct sess s;
	struct bytes b = {0};
	size_t hl;

	(void)state;
	ready(&s, true, &hl);
	put_error(&b, 50, true, 5);
	put_error(&b, 60, true, 1);
	put_error(&b, 70, false, 0);
	assert_int_equal(sess_feed(&s, b.p, b.len), IPCHUB_OK);
	for (uint64_t i = 0; i < 5; i++)
		expect_error(&s, 50 + i);
	expect_error(&s, 60);
	expect_error(&s, 70);
	expect_none(&s);
	sess_destroy(&s);
	free(b.p);
}

/* Feed bytes to a ready session: the first event call must fail with
 * code, before producing anything, and the session stays dead. */
static void expect_fatal(const struct bytes *b, int code)
{
	struct sess s;
	struct sess_event ev = {.type = SESS_EV_NONE};
	size_t hl;

	ready(&s, true, &hl);
	assert_int_equal(sess_feed(&s, b->p, b->len), IPCHUB_OK);
	assert_int_equal(sess_next_event(&s, &ev), code);
	assert_int_equal(ev.type, SESS_EV_NONE);
	assert_int_equal(s.state, SESS_DEAD);
	assert_int_equal(sess_next_event(&s, &ev), code);
	sess_destroy(&s);
}

static void test_malformed_batch(void **state)
{
	struct frame_hdr h;
	struct bytes b = {0}, body = {0};
	static const uint8_t not_array[] = {0x81, 0x01, 0x02};
	static const uint8_t empty[] = {0x90};
	static const uint8_t short_arr[] = {0x93, 0x01, 0x02};
	static const uint8_t trailing[] = {0x92, 0x01, 0x02, 0x03};
	static const uint8_t bad_elem[] = {0x92, 0x01, 0xc1};
	static const uint8_t lying[] = {0xdd, 0x00, 0x01, 0x00, 0x01, 0x01};
	const struct {
		const uint8_t *p;
		size_t len;
	} cases[] = {
		{not_array, sizeof(not_array)}, {empty, sizeof(empty)},
		{short_arr, sizeof(short_arr)}, {trailing, sizeof(trailing)},
		{bad_elem, sizeof(bad_elem)},   {lying, sizeof(lying)},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		b.len = 0;
		broker_send_hdr(&h, 1, WF_BATCH);
		put_frame(&b, &h, cases[i].p, cases[i].len);
		expect_fatal(&b, IPCHUB_E_BAD_FRAME);
	}

	/* BATCH without a body. */
	b.len = 0;
	broker_send_hdr(&h, 1, WF_BATCH);
	put_frame(&b, &h, NULL, 0);
	expect_fatal(&b, IPCHUB_E_BAD_FRAME);

	/* An element nested 33 levels (the array does not count as one). */
	put_array_hdr(&body, 1, 0);
	for (int i = 0; i < 33; i++)
		put(&body, (const uint8_t[]){0x91}, 1);
	put(&body, (const uint8_t[]){0x01}, 1);
	b.len = 0;
	put_frame(&b, &h, body.p, body.len);
	expect_fatal(&b, IPCHUB_E_BAD_FRAME);
	/* ... while 32 levels are fine. */
	{
		struct sess s;
		struct sess_event ev;
		size_t hl;

		body.len = 0;
		put_array_hdr(&body, 1, 0);
		for (int i = 0; i < 31; i++)
			put(&body, (const uint8_t[]){0x91}, 1);
		put(&body, (const uint8_t[]){0x90}, 1);
		b.len = 0;
		put_frame(&b, &h, body.p, body.len);
		ready(&s, true, &hl);
		assert_int_equal(sess_feed(&s, b.p, b.len), IPCHUB_OK);
		assert_int_equal(sess_next_event(&s, &ev), IPCHUB_OK);
		assert_int_equal(ev.type, SESS_EV_MSG);
		assert_int_equal(ev.msg->body_len, 32);
		ipchub_msg_free(ev.msg);
		sess_destroy(&s);
	}

	/* BATCH on a REPLY or PUBLISH is refused by the codec. */
	frame_init(&h, WIRE_REPLY);
	h.id = 1;
	h.from_id = 2;
	h.flags = WF_BATCH;
	h.has |= FH(WK_ID) | FH(WK_FROM_ID) | FH(WK_FLAGS);
	b.len = 0;
	put_frame(&b, &h, empty, 0);
	expect_fatal(&b, IPCHUB_E_BAD_FRAME);

	/* ERROR counts: zero, over the batch limit, ids past 2^64. */
	b.len = 0;
	put_error(&b, 1, true, 0);
	expect_fatal(&b, IPCHUB_E_BAD_FRAME);
	b.len = 0;
	put_error(&b, 1, true, (uint64_t)IPCHUB_MAX_BATCH + 1);
	expect_fatal(&b, IPCHUB_E_BAD_FRAME);
	b.len = 0;
	put_error(&b, UINT64_MAX - 1, true, 3);
	expect_fatal(&b, IPCHUB_E_BAD_FRAME);
	/* A batch whose ids would pass 2^64. */
	b.len = 0;
	body.len = 0;
	put_array_hdr(&body, 2, 0);
	put(&body, (const uint8_t[]){0x01, 0x02}, 2);
	broker_send_hdr(&h, UINT64_MAX, WF_BATCH);
	put_frame(&b, &h, body.p, body.len);
	expect_fatal(&b, IPCHUB_E_BAD_FRAME);
	free(body.p);
	free(b.p);
}

/* ---- lending (lend.h) ------------------------------------------------- */

/* Every element of a batch, then a single SEND, lent in place: the body
 * points into the inbound buffer; while lent, the session refuses to
 * decode or to make read room, and the buffer's bytes, position and
 * address do not change; ipchub_msg_free() leaves the (stack) slot alone;
 * ipchub_msg_dup() outlives the loan and the buffer's reuse. */
static void test_lend(void **state)
{
	struct bytes b = {0}, more = {0};
	struct frame_hdr h;
	struct sess_event ev;
	struct sess s;
	ipchub_msg slot, *dup = NULL;
	uint8_t *snap = NULL;
	size_t hl;

	(void)state;
	ready(&s, true, &hl);
	put_batch(&b, 100, N_BODIES, 2);
	broker_send_hdr(&h, 200, 0);
	put_frame(&b, &h, bodies[6].p, bodies[6].len);
	assert_int_equal(sess_feed(&s, b.p, b.len), IPCHUB_OK);
	s.lend.slot = &slot;
	for (uint32_t i = 0; i <= N_BODIES; i++) {
		uint32_t bi = i < N_BODIES ? i : 6;
		uint8_t *data = s.in.data, *sp;
		size_t off = s.in.off, len = s.in.len, cap, blen;
		const uint8_t *body;

		/* The live bytes (a consumed lent frame before them is
		 * poisoned under ASan). */
		snap = realloc(snap, len - off);
		assert_non_null(snap);
		memcpy(snap, data + off, len - off);
		assert_int_equal(sess_next_event(&s, &ev), IPCHUB_OK);
		assert_int_equal(ev.type, SESS_EV_MSG);
		assert_ptr_equal(ev.msg, &slot);
		assert_true(slot.lent && sess_lent(&s));
		assert_int_equal(ipchub_msg_id(ev.msg), i < N_BODIES ? 100 + i : 200);
		assert_string_equal(ipchub_msg_from(ev.msg), "a");
		assert_string_equal(ipchub_msg_to(ev.msg), "b");
		assert_int_equal(ipchub_msg_uid(ev.msg), 1000);
		body = ipchub_msg_body(ev.msg, &blen);
		assert_int_equal(blen, bodies[bi].len);
		assert_memory_equal(body, bodies[bi].p, blen);
		/* In place: inside the live bytes of the inbound buffer. */
		assert_true(body >= data + off && body + blen <= data + len);

		/* While lent nothing moves, nothing is decoded. */
		assert_int_equal(sess_in_space(&s, &sp, &cap), IPCHUB_E_INVALID);
		assert_int_equal(sess_feed(&s, "x", 1), IPCHUB_E_INVALID);
		assert_int_equal(sess_next_event(&s, &ev), IPCHUB_E_INVALID);
		assert_int_equal(s.state, SESS_READY);
		assert_ptr_equal(s.in.data, data);
		assert_int_equal(s.in.off, off);
		assert_int_equal(s.in.len, len);
		assert_memory_equal(s.in.data + off, snap, len - off);

		ipchub_msg_free(&slot); /* ignored: free() of a stack address */
		assert_memory_equal(ipchub_msg_body(&slot, NULL), bodies[bi].p,
				    blen);
		if (i == 3 || i == N_BODIES) {
			ipchub_msg_free(dup);
			assert_int_equal(ipchub_msg_dup(&slot, &dup), IPCHUB_OK);
			assert_false(dup->lent);
		}
		sess_lend_end(&s);
		assert_false(sess_lent(&s));
	}
	/* The last loan's end consumed the frame. */
	assert_int_equal(s.in.len, 0);
	expect_none(&s);

	/* The buffer is reused (and its bytes overwritten); the copy is
	 * its own. */
	broker_send_hdr(&h, 300, 0);
	put_frame(&more, &h, bodies[3].p, bodies[3].len);
	s.lend.slot = NULL;
	assert_int_equal(sess_feed(&s, more.p, more.len), IPCHUB_OK);
	assert_int_equal(sess_next_event(&s, &ev), IPCHUB_OK);
	assert_false(ev.msg->lent);
	ipchub_msg_free(ev.msg);
	assert_int_equal(ipchub_msg_id(dup), 200);
	assert_string_equal(ipchub_msg_from(dup), "a");
	assert_string_equal(ipchub_msg_to(dup), "b");
	{
		size_t dlen;
		const void *d = ipchub_msg_body(dup, &dlen);

		assert_int_equal(dlen, bodies[6].len);
		assert_memory_equal(d, bodies[6].p, dlen);
	}
	assert_int_equal(ipchub_msg_dup(NULL, &dup), IPCHUB_E_INVALID);
	ipchub_msg_free(dup);

	/* Two batches from different senders, lent back to back: the
	 * slot's fields are refilled for each batch (only a batch's later
	 * elements reuse them). */
	free(more.p);
	more = (struct bytes){0};
	for (int k = 0; k < 2; k++) {
		struct bytes body = {0};

		put_array_hdr(&body, 3, 0);
		for (int e = 0; e < 3; e++)
			put(&body, bodies[e].p, bodies[e].len);
		broker_send_hdr(&h, 400 + 10 * (uint64_t)k, WF_BATCH);
		frame_set_str(&h, WK_FROM, k ? "c" : "a", 1);
		h.uid = 1000 + (uint32_t)k;
		put_frame(&more, &h, body.p, body.len);
		free(body.p);
	}
	assert_int_equal(sess_feed(&s, more.p, more.len), IPCHUB_OK);
	s.lend.slot = &slot;
	for (int k = 0; k < 2; k++) {
		for (int e = 0; e < 3; e++) {
			size_t blen;

			assert_int_equal(sess_next_event(&s, &ev), IPCHUB_OK);
			assert_ptr_equal(ev.msg, &slot);
			assert_int_equal(ipchub_msg_id(&slot), 400 + 10 * k + e);
			assert_string_equal(ipchub_msg_from(&slot), k ? "c" : "a");
			assert_int_equal(ipchub_msg_uid(&slot), 1000 + k);
			assert_memory_equal(ipchub_msg_body(&slot, &blen),
					    bodies[e].p, bodies[e].len);
			assert_int_equal(blen, bodies[e].len);
			sess_lend_end(&s);
		}
	}
	expect_none(&s);
	free(snap);
	free(b.p);
	free(more.p);
	sess_destroy(&s);
}

/* ERRORs stay owned even when a slot is set; a late loan's end with
 * nothing lent is a no-op. */
static void test_lend_error_owned(void **state)
{
	struct bytes b = {0};
	struct sess_event ev;
	struct sess s;
	ipchub_msg slot;
	size_t hl;

	(void)state;
	ready(&s, true, &hl);
	put_error(&b, 40, true, 3);
	assert_int_equal(sess_feed(&s, b.p, b.len), IPCHUB_OK);
	s.lend.slot = &slot;
	sess_lend_end(&s);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(sess_next_event(&s, &ev), IPCHUB_OK);
		assert_int_equal(ev.type, SESS_EV_ERROR);
		assert_ptr_not_equal(ev.msg, &slot);
		assert_false(ev.msg->lent || sess_lent(&s));
		assert_int_equal(ipchub_msg_id(ev.msg), 40 + i);
		ipchub_msg_free(ev.msg);
	}
	expect_none(&s);
	free(b.p);
	sess_destroy(&s);
}

/* ---- outbound --------------------------------------------------------- */

static void send_hdr(struct frame_hdr *h, uint64_t id, const char *to,
		     uint32_t flags)
{
	frame_init(h, WIRE_SEND);
	h->id = id;
	h->has |= FH(WK_ID);
	frame_set_str(h, WK_TO, to, strlen(to));
	if (flags) {
		h->flags = flags;
		h->has |= FH(WK_FLAGS);
	}
}

/* Queue a SEND of body (len bytes) to `to` with id *id (then advanced). */
static void qsend(struct sess *s, uint64_t *id, const char *to,
		  uint32_t flags, const void *body, size_t len)
{
	struct frame_hdr h;

	send_hdr(&h, (*id)++, to, flags);
	assert_int_equal(sess_queue_send(s, &h, body, len), IPCHUB_OK);
}

/* The exact bytes of a batch written by the library: SEND {id, to, flags:
 * flags | BATCH} with array 32 of the bodies. */
static void expected_batch(struct bytes *out, uint64_t id, const char *to,
			   uint32_t flags, const struct bytes *b, uint32_t n)
{
	struct frame_hdr h;
	struct bytes body = {0};

	put_array_hdr(&body, n, 2);
	for (uint32_t i = 0; i < n; i++)
		put(&body, b[i].p, b[i].len);
	send_hdr(&h, id, to, flags | WF_BATCH);
	put_frame(out, &h, body.p, body.len);
	free(body.p);
}

/* Walk the frames in the outbound buffer from offset skip: their count,
 * and each one's (kind, first id, messages). */
struct oframe {
	int kind;
	uint64_t id;
	uint32_t n;
	uint32_t flags;
	size_t off, len;
};

static size_t out_frames(const struct sess *s, size_t skip,
			 struct oframe *v, size_t max)
{
	size_t len, off = skip, n = 0;
	const uint8_t *p = sess_out_data(s, &len);

	while (off < len) {
		struct frame_hdr h;
		struct iovec iov;
		struct mpr r;
		bool has_body;
		uint32_t flen, cnt = 1;

		assert_true(len - off >= 4);
		flen = frame_get_len(p + off);
		assert_true(len - off - 4 >= flen);
		mpr_init_buf(&r, &iov, p + off + 4, flen);
		assert_int_equal(frame_decode(&r, FRAME_C2B, &h, &has_body,
					      NULL), WIRE_E_OK);
		if (h.flags & WF_BATCH)
			assert_int_equal(frame_batch_check(&r, &cnt, NULL),
					 WIRE_E_OK);
		else if (has_body)
			assert_int_equal(frame_body_check(&r, NULL), WIRE_E_OK);
		assert_true(n < max);
		v[n++] = (struct oframe){.kind = h.kind, .id = h.id, .n = cnt,
					 .flags = h.flags, .off = off,
					 .len = 4 + (size_t)flen};
		off += 4 + (size_t)flen;
	}
	return n;
}

static void test_coalesce(void **state)
{
	struct sess s;
	struct bytes want = {0}, b[5];
	struct oframe f[8];
	uint64_t id = 10;
	size_t hl, len;
	const uint8_t *p;

	(void)state;
	memset(b, 0, sizeof(b));
	put(&b[0], (const uint8_t[]){0x01}, 1);
	put(&b[1], (const uint8_t[]){0xa3, 'x', 'y', 'z'}, 4);
	put(&b[2], bodies[3].p, bodies[3].len); /* bin 3000 */
	put(&b[3], (const uint8_t[]){0x81, 0xa1, 'k', 0xc0}, 4);
	put(&b[4], (const uint8_t[]){0xc0}, 1);

	ready(&s, true, &hl);
	/* One message: a plain SEND. */
	qsend(&s, &id, "b", 0, b[0].p, b[0].len);
	assert_int_equal(out_frames(&s, hl, f, 8), 1);
	assert_int_equal(f[0].flags, 0);
	assert_int_equal(f[0].n, 1);
	/* Four more: one batch, byte for byte what the protocol says. */
	for (int i = 1; i < 5; i++)
		qsend(&s, &id, "b", 0, b[i].p, b[i].len);
	expected_batch(&want, 10, "b", 0, b, 5);
	p = sess_out_data(&s, &len);
	assert_int_equal(len, hl + want.len);
	assert_memory_equal(p + hl, want.p, want.len);
	assert_int_equal(out_frames(&s, hl, f, 8), 1);
	assert_int_equal(f[0].id, 10);
	assert_int_equal(f[0].n, 5);
	sess_destroy(&s);

	/* NOWAIT sends batch among themselves, and keep the flag. */
	ready(&s, true, &hl);
	id = 1;
	for (int i = 0; i < 3; i++)
		qsend(&s, &id, "svc", WF_NOWAIT, b[i].p, b[i].len);
	want.len = 0;
	expected_batch(&want, 1, "svc", WF_NOWAIT, b, 3);
	p = sess_out_data(&s, &len);
	assert_int_equal(len, hl + want.len);
	assert_memory_equal(p + hl, want.p, want.len);
	sess_destroy(&s);

	for (int i = 0; i < 5; i++)
		free(b[i].p);
	free(want.p);
}

/* A bin body of exactly total bytes (bin 16 header + zeros). */
static uint8_t *bin_body(size_t total)
{
	uint8_t *p = calloc(1, total);

	assert_non_null(p);
	p[0] = 0xc5;
	p[1] = (uint8_t)((total - 3) >> 8);
	p[2] = (uint8_t)(total - 3);
	return p;
}

static void test_batch_closers(void **state)
{
	struct sess s;
	struct frame_hdr h;
	struct oframe f[16];
	static const uint8_t one[] = {0x01};
	uint8_t *big = bin_body(IPCHUB_CLIENT_BATCH_BODY_MAX + 1);
	uint8_t *max = bin_body(IPCHUB_CLIENT_BATCH_BODY_MAX);
	uint64_t id;
	size_t hl, n;

	(void)state;

	/* Another name. */
	ready(&s, true, &hl);
	id = 1;
	qsend(&s, &id, "a", 0, one, 1);
	qsend(&s, &id, "a", 0, one, 1);
	qsend(&s, &id, "b", 0, one, 1);
	qsend(&s, &id, "b", 0, one, 1);
	qsend(&s, &id, "ab", 0, one, 1);
	assert_int_equal(out_frames(&s, hl, f, 16), 3);
	assert_int_equal(f[0].n, 2);
	assert_int_equal(f[1].id, 3);
	assert_int_equal(f[1].n, 2);
	assert_int_equal(f[2].n, 1);
	sess_destroy(&s);

	/* A request (any other frame) in between. */
	ready(&s, true, &hl);
	id = 1;
	qsend(&s, &id, "a", 0, one, 1);
	frame_init(&h, WIRE_REQUEST);
	h.id = id++;
	h.has |= FH(WK_ID);
	frame_set_str(&h, WK_TO, "a", 1);
	assert_int_equal(sess_queue_frame(&s, &h, one, 1), IPCHUB_OK);
	qsend(&s, &id, "a", 0, one, 1);
	qsend(&s, &id, "a", 0, one, 1);
	n = out_frames(&s, hl, f, 16);
	assert_int_equal(n, 3);
	assert_int_equal(f[0].kind, WIRE_SEND);
	assert_int_equal(f[0].n, 1);
	assert_int_equal(f[1].kind, WIRE_REQUEST);
	assert_int_equal(f[2].id, 3);
	assert_int_equal(f[2].n, 2);
	sess_destroy(&s);

	/* A NOWAIT change. */
	ready(&s, true, &hl);
	id = 1;
	qsend(&s, &id, "a", 0, one, 1);
	qsend(&s, &id, "a", WF_NOWAIT, one, 1);
	qsend(&s, &id, "a", WF_NOWAIT, one, 1);
	qsend(&s, &id, "a", 0, one, 1);
	n = out_frames(&s, hl, f, 16);
	assert_int_equal(n, 3);
	assert_int_equal(f[0].n, 1);
	assert_int_equal(f[1].n, 2);
	assert_int_equal(f[1].flags, WF_NOWAIT | WF_BATCH);
	assert_int_equal(f[2].n, 1);
	assert_int_equal(f[2].flags, 0);
	sess_destroy(&s);

	/* Ids that do not follow (an id was taken for something else). */
	ready(&s, true, &hl);
	id = 1;
	qsend(&s, &id, "a", 0, one, 1);
	id++;
	qsend(&s, &id, "a", 0, one, 1);
	assert_int_equal(out_frames(&s, hl, f, 16), 2);
	sess_destroy(&s);

	/* Writing up to the frame's first byte keeps it open; one byte of
	 * it handed to the socket closes it. */
	ready(&s, true, &hl);
	id = 1;
	qsend(&s, &id, "a", 0, one, 1);
	sess_out_consume(&s, hl);
	qsend(&s, &id, "a", 0, one, 1);
	assert_int_equal(out_frames(&s, 0, f, 16), 1);
	assert_int_equal(f[0].n, 2);
	sess_out_consume(&s, 1);
	qsend(&s, &id, "a", 0, one, 1);
	qsend(&s, &id, "a", 0, one, 1);
	n = out_frames(&s, f[0].len - 1, f, 16);
	assert_int_equal(n, 1);
	assert_int_equal(f[0].id, 3);
	assert_int_equal(f[0].n, 2);
	/* All of it written: the next send starts a new frame. */
	sess_out_consume(&s, sess_out_len(&s));
	qsend(&s, &id, "a", 0, one, 1);
	assert_int_equal(out_frames(&s, 0, f, 16), 1);
	assert_int_equal(f[0].id, 5);
	assert_int_equal(f[0].n, 1);
	assert_int_equal(f[0].flags, 0);
	sess_destroy(&s);

	/* A body over IPCHUB_CLIENT_BATCH_BODY_MAX gets its own frame and
	 * does not open one; a SEND without a body neither. */
	ready(&s, true, &hl);
	id = 1;
	qsend(&s, &id, "a", 0, one, 1);
	qsend(&s, &id, "a", 0, big, IPCHUB_CLIENT_BATCH_BODY_MAX + 1);
	qsend(&s, &id, "a", 0, one, 1);
	qsend(&s, &id, "a", 0, NULL, 0);
	qsend(&s, &id, "a", 0, one, 1);
	qsend(&s, &id, "a", 0, max, IPCHUB_CLIENT_BATCH_BODY_MAX);
	n = out_frames(&s, hl, f, 16);
	assert_int_equal(n, 5);
	assert_int_equal(f[0].n, 1);
	assert_int_equal(f[1].n, 1);
	assert_int_equal(f[2].n, 1);
	assert_int_equal(f[3].n, 1);
	assert_int_equal(f[4].id, 5);
	assert_int_equal(f[4].n, 2); /* exactly the maximum joins */
	sess_destroy(&s);

	/* The byte cap: the frame never passes IPCHUB_CLIENT_BATCH_BYTES. */
	ready(&s, true, &hl);
	id = 1;
	for (int i = 0; i < 40; i++)
		qsend(&s, &id, "a", 0, max, IPCHUB_CLIENT_BATCH_BODY_MAX);
	n = out_frames(&s, hl, f, 16);
	assert_true(n >= 3);
	for (size_t i = 0; i < n; i++) {
		assert_true(f[i].len - 4 <= IPCHUB_CLIENT_BATCH_BYTES);
		/* Full: one more body would not have fitted. */
		if (i + 1 < n)
			assert_true(f[i].len - 4 + IPCHUB_CLIENT_BATCH_BODY_MAX >
				    IPCHUB_CLIENT_BATCH_BYTES);
	}
	sess_destroy(&s);

	/* A broker without BATCH: every message its own frame. */
	ready(&s, false, &hl);
	id = 1;
	for (int i = 0; i < 4; i++)
		qsend(&s, &id, "a", 0, one, 1);
	n = out_frames(&s, hl, f, 16);
	assert_int_equal(n, 4);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(f[i].n, 1);
		assert_int_equal(f[i].flags, 0);
	}
	sess_destroy(&s);
	free(big);
	free(max);
}

/* The open frame is found from the buffer's end: growing or compacting
 * the outbound buffer under it must not matter. */
static void test_coalesce_across_compaction(void **state)
{
	struct sess s;
	struct bytes want = {0}, b[300];
	struct oframe f[4];
	uint64_t id = 1;
	size_t hl, len;
	const uint8_t *p;

	(void)state;
	ready(&s, true, &hl);
	sess_out_consume(&s, hl - 1); /* dead prefix; HELLO not all written */
	for (int i = 0; i < 300; i++) {
		memset(&b[i], 0, sizeof(b[i]));
		put(&b[i], (const uint8_t[]){0xc4, 100}, 2);
		for (int k = 0; k < 100; k++)
			put(&b[i], &(uint8_t){(uint8_t)(i + k)}, 1);
		qsend(&s, &id, "peer", 0, b[i].p, b[i].len);
	}
	/* 30 KB went through a 4 KiB start: the buffer grew and compacted. */
	assert_int_equal(s.out.off, 0);
	expected_batch(&want, 1, "peer", 0, b, 300);
	p = sess_out_data(&s, &len);
	assert_int_equal(len, 1 + want.len);
	assert_memory_equal(p + 1, want.p, want.len);
	assert_int_equal(out_frames(&s, 1, f, 4), 1);
	for (int i = 0; i < 300; i++)
		free(b[i].p);
	free(want.p);
	sess_destroy(&s);
}

/* batch_iter re-encodes a queued batch as single SENDs (the event API does
 * this when a connection is lost). */
static void test_batch_iter(void **state)
{
	struct sess s;
	struct batch_iter *it = malloc(sizeof(*it));
	struct bytes b[3];
	const uint8_t *p, *body;
	size_t hl, len, blen;
	uint64_t id = 20;
	uint32_t k = 0;

	(void)state;
	assert_non_null(it);
	memset(b, 0, sizeof(b));
	put(&b[0], (const uint8_t[]){0x05}, 1);
	put(&b[1], (const uint8_t[]){0xa2, 'h', 'i'}, 3);
	put(&b[2], (const uint8_t[]){0x92, 0x01, 0x02}, 3);
	ready(&s, true, &hl);
	sess_out_consume(&s, hl);
	for (int i = 0; i < 3; i++)
		qsend(&s, &id, "z", WF_NOWAIT, b[i].p, b[i].len);
	p = sess_out_data(&s, &len);
	assert_int_equal(batch_iter_init(it, p, len), IPCHUB_OK);
	while (batch_iter_next(it, &body, &blen)) {
		assert_true(k < 3);
		assert_int_equal(it->h.id, 20 + k);
		assert_int_equal(it->h.flags, WF_NOWAIT);
		assert_string_equal(it->h.to, "z");
		assert_int_equal(blen, b[k].len);
		assert_memory_equal(body, b[k].p, blen);
		k++;
	}
	assert_int_equal(k, 3);
	/* A plain SEND yields its one message. */
	sess_out_consume(&s, len);
	qsend(&s, &id, "z", 0, b[0].p, b[0].len);
	p = sess_out_data(&s, &len);
	assert_int_equal(batch_iter_init(it, p, len), IPCHUB_OK);
	assert_true(batch_iter_next(it, &body, &blen));
	assert_int_equal(it->h.id, 23);
	assert_int_equal(blen, 1);
	assert_false(batch_iter_next(it, &body, &blen));
	/* A cut frame. */
	assert_int_equal(batch_iter_init(it, p, len - 1), IPCHUB_E_BAD_FRAME);
	sess_destroy(&s);
	for (int i = 0; i < 3; i++)
		free(b[i].p);
	free(it);
}

static void test_hello_flags(void **state)
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
	assert_int_equal(sess_queue_hello(&s, NULL), IPCHUB_OK);
	p = sess_out_data(&s, &len);
	mpr_init_buf(&r, &iov, p + 4, len - 4);
	assert_int_equal(frame_decode(&r, FRAME_C2B, &h, &has_body, NULL), 0);
	assert_true(h.has & FH(WK_FLAGS));
	assert_int_equal(h.flags, WF_BATCH | WF_PUB_BATCH);
	sess_destroy(&s);
}

/* PUBLISH batches (PROTOCOL.md 10.2.1): consecutive publications to one
 * topic share a frame only after a WELCOME with PUB_BATCH, never with a
 * SEND; a batched PUBLISH from the broker yields one message per element
 * with its id, topic and subscription. */
static void test_publish_batches(void **state)
{
	struct sess s;
	struct frame_hdr h;
	struct oframe f[8];
	struct bytes in = {0}, body = {0};
	uint64_t id = 1;
	size_t hl;

	(void)state;
	for (int pb = 0; pb < 2; pb++) {
		ready_flags(&s, WF_BATCH | (pb ? WF_PUB_BATCH : 0), &hl);
		id = 1;
		for (int i = 0; i < 3; i++) {
			frame_init(&h, WIRE_PUBLISH);
			h.id = id++;
			h.has |= FH(WK_ID);
			frame_set_str(&h, WK_TOPIC, "t.x", 3);
			assert_int_equal(sess_queue_send(&s, &h, bodies[i].p,
							 bodies[i].len),
					 IPCHUB_OK);
		}
		/* A SEND to a name spelt like the topic does not join. */
		qsend(&s, &id, "t.x", 0, bodies[0].p, bodies[0].len);
		if (pb) {
			assert_int_equal(out_frames(&s, hl, f, 8), 2);
			assert_int_equal(f[0].kind, WIRE_PUBLISH);
			assert_int_equal(f[0].id, 1);
			assert_int_equal(f[0].n, 3);
			assert_int_equal(f[0].flags, WF_BATCH);
			assert_int_equal(f[1].kind, WIRE_SEND);
			assert_int_equal(f[1].n, 1);
		} else {
			assert_int_equal(out_frames(&s, hl, f, 8), 4);
			for (int i = 0; i < 3; i++) {
				assert_int_equal(f[i].kind, WIRE_PUBLISH);
				assert_int_equal(f[i].n, 1);
				assert_int_equal(f[i].flags, 0);
			}
		}
		sess_destroy(&s);
	}

	ready_flags(&s, WF_BATCH | WF_PUB_BATCH, &hl);
	put_array_hdr(&body, N_BODIES, 1);
	for (uint32_t i = 0; i < N_BODIES; i++)
		put(&body, bodies[i].p, bodies[i].len);
	frame_init(&h, WIRE_PUBLISH);
	h.id = 70;
	h.sub = 5;
	h.from_id = 3;
	h.flags = WF_BATCH;
	h.has |= FH(WK_ID) | FH(WK_SUB) | FH(WK_FROM_ID) | FH(WK_FLAGS);
	frame_set_str(&h, WK_TOPIC, "t.x", 3);
	put_frame(&in, &h, body.p, body.len);
	assert_int_equal(sess_feed(&s, in.p, in.len), IPCHUB_OK);
	for (uint32_t i = 0; i < N_BODIES; i++) {
		struct sess_event ev;
		const void *p;
		size_t len;

		assert_int_equal(sess_next_event(&s, &ev), IPCHUB_OK);
		assert_int_equal(ev.type, SESS_EV_MSG);
		assert_int_equal(ipchub_msg_kind(ev.msg), IPCHUB_KIND_PUBLISH);
		assert_int_equal(ipchub_msg_id(ev.msg), 70 + i);
		assert_int_equal(ipchub_msg_sub(ev.msg), 5);
		assert_string_equal(ipchub_msg_topic(ev.msg), "t.x");
		p = ipchub_msg_body(ev.msg, &len);
		assert_int_equal(len, bodies[i].len);
		assert_memory_equal(p, bodies[i].p, len);
		ipchub_msg_free(ev.msg);
	}
	expect_none(&s);
	sess_destroy(&s);
	free(in.p);
	free(body.p);
}

static int setup(void **state)
{
	(void)state;
	make_bodies();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	free_bodies();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hello_flags),
		cmocka_unit_test(test_publish_batches),
		cmocka_unit_test(test_split_batch),
		cmocka_unit_test(test_split_survives_compaction),
		cmocka_unit_test(test_split_back_to_back),
		cmocka_unit_test(test_error_count),
		cmocka_unit_test(test_lend),
		cmocka_unit_test(test_lend_error_owned),
		cmocka_unit_test(test_malformed_batch),
		cmocka_unit_test(test_coalesce),
		cmocka_unit_test(test_batch_closers),
		cmocka_unit_test(test_coalesce_across_compaction),
		cmocka_unit_test(test_batch_iter),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
