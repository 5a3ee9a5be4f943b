/*
 * test_msg.c - unit tests of message objects: accessors, body validation
 * before msgpack-c sees the bytes, error code names, packing helpers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "frame.h"
#include "ipchub.h"
#include "limits.h"
#include "mpr.h"
#include "msg.h"

static ipchub_msg *make(int kind, const void *body, size_t len)
{
	struct frame_hdr h;
	ipchub_msg *m = NULL;

	frame_init(&h, (enum wire_kind)kind);
	h.id = 7;
	h.from_id = 3;
	h.timeout = 100;
	h.has |= FH(WK_ID) | FH(WK_FROM_ID) | FH(WK_TIMEOUT);
	frame_set_str(&h, WK_TO, "svc", 3);
	frame_set_str(&h, WK_FROM, "cli", 3);
	assert_int_equal(msg_from_frame(&h, body, len, &m), IPCHUB_OK);
	return m;
}

static void test_accessors(void **state)
{
	static const uint8_t body[] = {0x92, 0x01, 0xa1, 'x'}; /* [1,"x"] */
	ipchub_msg *m = make(WIRE_REQUEST, body, sizeof(body));
	msgpack_unpacked u;
	size_t len = 0;

	(void)state;
	assert_int_equal(ipchub_msg_kind(m), IPCHUB_KIND_REQUEST);
	assert_int_equal(ipchub_msg_id(m), 7);
	assert_int_equal(ipchub_msg_from_id(m), 3);
	assert_int_equal(ipchub_msg_timeout(m), 100);
	assert_string_equal(ipchub_msg_from(m), "cli");
	assert_string_equal(ipchub_msg_to(m), "svc");
	assert_int_equal(ipchub_msg_error(m), 0);
	assert_null(ipchub_msg_error_text(m));
	assert_memory_equal(ipchub_msg_body(m, &len), body, sizeof(body));
	assert_int_equal(len, sizeof(body));

	msgpack_unpacked_init(&u);
	assert_int_equal(ipchub_msg_unpack(m, &u), IPCHUB_OK);
	assert_int_equal(u.data.type, MSGPACK_OBJECT_ARRAY);
	assert_int_equal(u.data.via.array.size, 2);
	assert_int_equal(u.data.via.array.ptr[0].via.u64, 1);
	msgpack_unpacked_destroy(&u);
	ipchub_msg_free(m);
	ipchub_msg_free(NULL);
}

static void test_error_msg(void **state)
{
	struct frame_hdr h;
	ipchub_msg *m = NULL;

	(void)state;
	frame_init(&h, WIRE_ERROR);
	h.id = 9;
	h.code = WIRE_E_NO_SUCH_PEER;
	h.has |= FH(WK_ID) | FH(WK_CODE);
	assert_int_equal(msg_from_frame(&h, NULL, 0, &m), IPCHUB_OK);
	assert_int_equal(ipchub_msg_kind(m), 10);
	assert_int_equal(ipchub_msg_error(m), IPCHUB_E_NO_SUCH_PEER);
	/* Without a broker text, the code's description. */
	assert_string_equal(ipchub_msg_error_text(m),
			    ipchub_strerror(IPCHUB_E_NO_SUCH_PEER));
	assert_null(ipchub_msg_to(m));
	assert_null(ipchub_msg_from(m));
	ipchub_msg_free(m);
}

struct bad {
	const char *what;
	const uint8_t *p;
	size_t len;
};

static void test_unpack_rejects(void **state)
{
	static const uint8_t reserved[] = {0xc1};
	static const uint8_t truncated_str[] = {0xa5, 'a', 'b'};
	static const uint8_t two[] = {0x01, 0x02};
	static const uint8_t short_array[] = {0x93, 0x01, 0x02};
	/* Declares 2^32-1 elements in 5 bytes: must be refused before
	 * msgpack-c would allocate for it. */
	static const uint8_t huge_count[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
	static const uint8_t huge_map[] = {0xdf, 0xff, 0xff, 0xff, 0xff, 0, 0};
	static const uint8_t truncated_bin[] = {0xc6, 0, 0, 1, 0, 'x'};
	uint8_t deep[IPCHUB_MAX_BODY_DEPTH + 2];
	const struct bad cases[] = {
		{"empty", NULL, 0},
		{"reserved byte", reserved, sizeof(reserved)},
		{"truncated str", truncated_str, sizeof(truncated_str)},
		{"two values", two, sizeof(two)},
		{"short array", short_array, sizeof(short_array)},
		{"huge array count", huge_count, sizeof(huge_count)},
		{"huge map count", huge_map, sizeof(huge_map)},
		{"truncated bin", truncated_bin, sizeof(truncated_bin)},
		{"33 levels", deep, IPCHUB_MAX_BODY_DEPTH + 2},
	};

	(void)state;
	/* IPCHUB_MAX_BODY_DEPTH + 1 nested one-element arrays */
	memset(deep, 0x91, IPCHUB_MAX_BODY_DEPTH + 1);
	deep[IPCHUB_MAX_BODY_DEPTH + 1] = 0x01;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ipchub_msg *m = make(WIRE_SEND, cases[i].p, cases[i].len);
		msgpack_unpacked u;

		msgpack_unpacked_init(&u);
		if (ipchub_msg_unpack(m, &u) != IPCHUB_E_BAD_BODY)
			fail_msg("accepted: %s", cases[i].what);
		assert_int_equal(ipchub_body_check(cases[i].p, cases[i].len),
				 IPCHUB_E_BAD_BODY);
		msgpack_unpacked_destroy(&u);
		ipchub_msg_free(m);
	}
	/* The limit itself is accepted. */
	memset(deep, 0x91, IPCHUB_MAX_BODY_DEPTH);
	deep[IPCHUB_MAX_BODY_DEPTH] = 0x01;
	assert_int_equal(ipchub_body_check(deep, IPCHUB_MAX_BODY_DEPTH + 1), IPCHUB_OK);
}

/* ipchub_body_unpack gives what msgpack-c gives on every type, and a body
 * at the depth limit unpacks: the limit is msgpack-c's own. */
static void test_unpack_matches_msgpack_c(void **state)
{
	static const char *const samples[] = {
		"\x00", "\x7f", "\xff", "\xe0", "\xcc\x80", "\xcd\x01\x00",
		"\xce\x00\x01\x00\x00", "\xcf\xff\xff\xff\xff\xff\xff\xff\xff",
		"\xd0\x80", "\xd0\x05", "\xd1\x80\x00", "\xd2\xff\xff\xff\xfe",
		"\xd3\x80\x00\x00\x00\x00\x00\x00\x00",
		"\xca\x3f\xc0\x00\x00", "\xcb\x3f\xf8\x00\x00\x00\x00\x00\x00",
		"\xc0", "\xc2", "\xc3", "\xa3" "abc", "\xd9\x02hi", "\xda\x00\x01z",
		"\xc4\x02\x01\x02", "\xc5\x00\x01\x09", "\xd4\x05\x01",
		"\xd5\xff\x01\x02", "\xc7\x03\x07" "abc", "\xd8\x01" "0123456789abcdef",
		"\x92\x01\x92\x02\xa1x", "\xdc\x00\x02\xc0\xc3",
		"\x82\xa1k\x01\x01\x91\x80", "\xde\x00\x01\xc0\xc0", "\x90", "\x80",
	};
	static const size_t lens[] = {
		1, 1, 1, 1, 2, 3, 5, 9, 2, 2, 3, 5, 9, 5, 9, 1, 1, 1, 4, 4, 4,
		4, 4, 3, 4, 6, 18, 6, 5, 7, 5, 1, 1,
	};
	uint8_t deep[IPCHUB_MAX_BODY_DEPTH + 1];

	(void)state;
	assert_int_equal(sizeof(samples) / sizeof(samples[0]),
			 sizeof(lens) / sizeof(lens[0]));
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		msgpack_unpacked a, b;
		size_t off = 0;

		msgpack_unpacked_init(&a);
		msgpack_unpacked_init(&b);
		if (ipchub_body_unpack(samples[i], lens[i], &a) != IPCHUB_OK)
			fail_msg("sample %zu refused", i);
		assert_int_equal(msgpack_unpack_next(&b, samples[i], lens[i], &off),
				 MSGPACK_UNPACK_SUCCESS);
		if (!msgpack_object_equal(a.data, b.data))
			fail_msg("sample %zu differs", i);
		msgpack_unpacked_destroy(&a);
		msgpack_unpacked_destroy(&b);
	}

	memset(deep, 0x91, IPCHUB_MAX_BODY_DEPTH);
	deep[IPCHUB_MAX_BODY_DEPTH] = 0x2a;
	{
		msgpack_unpacked a;
		const msgpack_object *o;

		msgpack_unpacked_init(&a);
		assert_int_equal(ipchub_body_unpack(deep, sizeof(deep), &a),
				 IPCHUB_OK);
		o = &a.data;
		for (unsigned d = 0; d < IPCHUB_MAX_BODY_DEPTH; d++) {
			assert_int_equal(o->type, MSGPACK_OBJECT_ARRAY);
			o = &o->via.array.ptr[0];
		}
		assert_int_equal(o->via.u64, 42);
		msgpack_unpacked_destroy(&a);
	}
}

static void test_codes(void **state)
{
	(void)state;
	assert_string_equal(ipchub_code_name(IPCHUB_OK), "OK");
	assert_string_equal(ipchub_code_name(IPCHUB_E_NO_SUCH_PEER),
			    "NO_SUCH_PEER");
	assert_string_equal(ipchub_code_name(IPCHUB_E_BAD_BODY), "BAD_BODY");
	assert_string_equal(ipchub_code_name(IPCHUB_E_IO), "IO");
	assert_string_equal(ipchub_code_name(IPCHUB_E_INTERRUPTED),
			    "INTERRUPTED");
	assert_string_equal(ipchub_code_name(IPCHUB_E_NO_BROKER), "NO_BROKER");
	assert_string_equal(ipchub_code_name(40), "UNKNOWN");
	assert_string_equal(ipchub_code_name(-1), "UNKNOWN");
	assert_string_equal(ipchub_code_name(1000), "UNKNOWN");
	for (int c = -2; c < 100; c++)
		assert_non_null(ipchub_strerror(c));
}

static void test_pack(void **state)
{
	ipchub_pack pk;

	(void)state;
	ipchub_pack_init(&pk);
	assert_int_equal(ipchub_pack_str(&pk, "hi"), IPCHUB_OK);
	assert_int_equal(pk.buf.size, 3);
	assert_memory_equal(pk.buf.data, "\xa2hi", 3);
	assert_int_equal(ipchub_body_check(pk.buf.data, pk.buf.size), IPCHUB_OK);
	ipchub_pack_reset(&pk);
	assert_int_equal(pk.buf.size, 0);
	msgpack_pack_map(&pk.pk, 1);
	msgpack_pack_str_with_body(&pk.pk, "k", 1);
	msgpack_pack_int(&pk.pk, -1);
	assert_int_equal(ipchub_body_check(pk.buf.data, pk.buf.size), IPCHUB_OK);
	assert_int_equal(ipchub_pack_str(&pk, NULL), IPCHUB_E_INVALID);
	ipchub_pack_destroy(&pk);
}

/* ipchub_body_check() accepts a flat value (scalar, str, bin, fixext) by
 * its header alone: it must agree with the bounded walker on every first
 * byte, every short length and every length field near the real one. */
static void test_body_check_flat_agrees(void **state)
{
	uint8_t buf[300];
	uint32_t seed = 12345;

	(void)state;
	for (int t = 0; t < 256; t++) {
		for (size_t len = 1; len <= sizeof(buf); len++) {
			for (int round = 0; round < 4; round++) {
				int want;

				buf[0] = (uint8_t)t;
				for (size_t i = 1; i < len; i++) {
					seed = seed * 1103515245u + 12345u;
					buf[i] = (uint8_t)(seed >> 16);
				}
				/* Length fields right (round 1), one too long
				 * (2) or one too short (3), for each width. */
				if (round > 0) {
					size_t w = (t == 0xc4 || t == 0xd9) ? 1
						 : (t == 0xc5 || t == 0xda) ? 2 : 4;
					size_t n = len - 1 - w;

					if (len < 1 + w)
						continue;
					n += round == 2 ? 1 : 0;
					n -= round == 3 && n > 0 ? 1 : 0;
					for (size_t i = 0; i < w; i++)
						buf[1 + i] = (uint8_t)(n >> (8 * (w - 1 - i)));
				}
				want = mpr_validate(buf, len, IPCHUB_MAX_BODY_DEPTH) ==
					       MPR_OK
					       ? IPCHUB_OK
					       : IPCHUB_E_BAD_BODY;
				if (ipchub_body_check(buf, len) != want)
					fail_msg("type 0x%02x len %zu round %d: "
						 "check %d, walker %d", t, len,
						 round, ipchub_body_check(buf, len),
						 want);
			}
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accessors),
		cmocka_unit_test(test_error_msg),
		cmocka_unit_test(test_unpack_rejects),
		cmocka_unit_test(test_unpack_matches_msgpack_c),
		cmocka_unit_test(test_codes),
		cmocka_unit_test(test_pack),
		cmocka_unit_test(test_body_check_flat_agrees),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
