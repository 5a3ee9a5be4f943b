/* test_batch.c - batch_split(), the splitting of a batched SEND for a
 * receiver that did not announce BATCH (broker/batch.h), over evbuffers
 * whose chains break the body at every offset: inside the array header,
 * inside a message's header, inside a message bigger than the 4 KiB copy
 * path, and between messages. Each split frame must be the stamped header
 * with id + i and exactly message i's bytes; a body that is not a valid
 * batch is refused with -EINVAL. No broker runs here. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "batch.h"

/* Bytes put in front of the body, as the frame's prefix and header are. */
#define LEAD 7u

/* The messages: every msgpack family, one over IPCHUB_FWD_COPY_MAX. */
static uint8_t body[16384];
static size_t body_len, msg_off[16], msg_len[16];
static uint32_t nmsg;

static void add_msg(const void *p, size_t n)
{
	msg_off[nmsg] = body_len;
	msg_len[nmsg++] = n;
	memcpy(body + body_len, p, n);
	body_len += n;
}

static void build_body(void)
{
	static const uint8_t big_hdr[] = { 0xc5, 0x13, 0x88 }; /* bin16 5000 */
	uint8_t big[3 + 5000];

	body_len = nmsg = 0;
	body[body_len++] = 0xdd; /* array 32, count patched below */
	body_len += 4;
	add_msg("\x01", 1);
	add_msg("\xa3" "abc", 4);
	add_msg("\xc0", 1);
	memcpy(big, big_hdr, sizeof(big_hdr));
	for (size_t i = 0; i < 5000; i++)
		big[3 + i] = (uint8_t)(i * 7);
	add_msg(big, sizeof(big));
	add_msg("\x81\xa1k\x92\x01\xcd\x01\x00", 8);
	add_msg("\xcb\x40\x09\x21\xfb\x54\x44\x2d\x18", 9);
	add_msg("\xcf\x01\x02\x03\x04\x05\x06\x07\x08", 9);
	add_msg("\xd6\x01\x00\x00\x00\x2a", 6);
	add_msg("\x91\x91\x91\xc3", 4);
	frame_put_len(body + 1, nmsg);
}

static void stamped(struct frame_hdr *h, uint64_t id)
{
	frame_init(h, WIRE_SEND);
	h->id = id;
	h->from_id = 3;
	h->uid = 1000;
	h->has |= FH(WK_ID) | FH(WK_FROM_ID) | FH(WK_UID);
	frame_set_str(h, WK_TO, "rx", 2);
	frame_set_str(h, WK_FROM, "tx", 2);
}

/* src: LEAD junk bytes, then the body as chains that end at each offset
 * listed in cuts (ascending, inside the body), each chain its own
 * reference so that libevent does not merge them. */
static struct evbuffer *chained(const size_t *cuts, size_t ncuts)
{
	static const uint8_t lead[LEAD] = { 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee };
	struct evbuffer *src = evbuffer_new();
	size_t at = 0;

	assert_non_null(src);
	assert_int_equal(evbuffer_add_reference(src, lead, LEAD, NULL, NULL), 0);
	for (size_t k = 0; k <= ncuts; k++) {
		size_t end = k < ncuts ? cuts[k] : body_len;

		if (end > at)
			assert_int_equal(evbuffer_add_reference(src, body + at,
								 end - at, NULL,
								 NULL),
					 0);
		at = end;
	}
	return src;
}

/* Split src and check every frame in the result. */
static void split_and_check(struct evbuffer *src, uint64_t id)
{
	struct evbuffer *out = evbuffer_new();
	struct frame_hdr h;
	uint32_t frames = 0;
	size_t bytes = 0, total;
	uint8_t *p;

	assert_non_null(out);
	stamped(&h, id);
	assert_int_equal(batch_split(src, LEAD, body_len, &h, out, NULL, &frames,
				     &bytes),
			 0);
	assert_int_equal(h.id, id); /* restored */
	assert_int_equal(evbuffer_get_length(src), LEAD + body_len); /* untouched */
	assert_int_equal(frames, nmsg);
	total = evbuffer_get_length(out);
	assert_int_equal(bytes, total);
	p = evbuffer_pullup(out, -1);
	for (uint32_t i = 0; i < nmsg; i++) {
		uint32_t len;
		struct frame_hdr d;
		struct iovec iov;
		struct mpr r;
		bool has_body;

		assert_true(total >= IPCHUB_LEN_PREFIX);
		len = frame_get_len(p);
		assert_true(total >= IPCHUB_LEN_PREFIX + len);
		mpr_init_buf(&r, &iov, p + IPCHUB_LEN_PREFIX, len);
		assert_int_equal(frame_decode(&r, FRAME_B2C, &d, &has_body, NULL),
				 WIRE_E_OK);
		assert_int_equal(d.kind, WIRE_SEND);
		assert_int_equal(d.id, id + i);
		assert_false(d.has & FH(WK_FLAGS));
		assert_string_equal(d.to, "rx");
		assert_string_equal(d.from, "tx");
		assert_int_equal(d.from_id, 3);
		assert_int_equal(d.uid, 1000);
		assert_true(has_body);
		assert_int_equal(mpr_left(&r), msg_len[i]);
		assert_memory_equal(p + IPCHUB_LEN_PREFIX + len - msg_len[i],
				    body + msg_off[i], msg_len[i]);
		p += IPCHUB_LEN_PREFIX + len;
		total -= IPCHUB_LEN_PREFIX + len;
	}
	assert_int_equal(total, 0);
	evbuffer_free(out);
}

static void test_one_cut_everywhere(void **state)
{
	(void)state;
	build_body();
	for (size_t cut = 0; cut <= body_len; cut++) {
		struct evbuffer *src = chained(&cut, 1);

		split_and_check(src, 1000 + cut);
		evbuffer_free(src);
	}
}

static void test_small_chains(void **state)
{
	(void)state;
	static const size_t steps[] = { 1, 2, 3, 5, 64, 4095, 4097 };
	static size_t cuts[sizeof(body)];

	build_body();
	for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
		size_t n = 0;
		struct evbuffer *src;

		for (size_t at = steps[s]; at < body_len; at += steps[s])
			cuts[n++] = at;
		src = chained(cuts, n);
		split_and_check(src, UINT64_MAX - 2); /* ids wrap past 2^64 - 1 */
		evbuffer_free(src);
	}
}

static void test_not_a_batch(void **state)
{
	(void)state;
	static const struct {
		const char *b;
		size_t n;
	} bad[] = {
		{ "\x90", 1 },         /* no message */
		{ "\x01", 1 },         /* not an array */
		{ "\x92\x01", 2 },     /* one message short */
		{ "\x91\x01\x02", 3 }, /* trailing byte */
		{ "\x91\xc1", 2 },     /* 0xc1 */
	};
	struct frame_hdr h;
	uint32_t frames = 77;
	size_t bytes = 77;

	stamped(&h, 5);
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		struct evbuffer *src = evbuffer_new();
		struct evbuffer *out = evbuffer_new();

		evbuffer_add(src, bad[k].b, bad[k].n);
		assert_int_equal(batch_split(src, 0, bad[k].n, &h, out, NULL,
					     &frames, &bytes),
				 -EINVAL);
		assert_int_equal(h.id, 5);
		assert_int_equal(frames, 77); /* outputs untouched */
		assert_int_equal(bytes, 77);
		/* Past the end of src. */
		assert_int_equal(batch_split(src, 1, bad[k].n, &h, out, NULL,
					     &frames, &bytes),
				 -EINVAL);
		evbuffer_free(src);
		evbuffer_free(out);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_cut_everywhere),
		cmocka_unit_test(test_small_chains),
		cmocka_unit_test(test_not_a_batch),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
