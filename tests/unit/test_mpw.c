/*
 * test_mpw.c - unit tests of the msgpack writer: the shortest form at
 * every size boundary, overflow that never writes past the capacity, and
 * a round trip through the reader.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "mpr.h"
#include "mpw.h"

static uint8_t buf[70000 + 16];

#define EXPECT(w, ...)                                                  \
	do {                                                            \
		const uint8_t want_[] = { __VA_ARGS__ };                \
		assert_false((w)->overflow);                            \
		assert_int_equal((w)->len, sizeof(want_));              \
		assert_memory_equal((w)->p, want_, sizeof(want_));      \
	} while (0)

static void test_uint_forms(void **state)
{
	struct mpw w;

#define U(v, ...) mpw_init(&w, buf, sizeof(buf)); mpw_uint(&w, v); EXPECT(&w, __VA_ARGS__)
	U(0, 0x00);
	U(0x7f, 0x7f);
	U(0x80, 0xcc, 0x80);
	U(0xff, 0xcc, 0xff);
	U(0x100, 0xcd, 0x01, 0x00);
	U(0xffff, 0xcd, 0xff, 0xff);
	U(0x10000, 0xce, 0x00, 0x01, 0x00, 0x00);
	U(0xffffffffu, 0xce, 0xff, 0xff, 0xff, 0xff);
	U(0x100000000u, 0xcf, 0, 0, 0, 1, 0, 0, 0, 0);
	U(UINT64_MAX, 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
#undef U
}

static void test_int_forms(void **state)
{
	struct mpw w;

#define I(v, ...) mpw_init(&w, buf, sizeof(buf)); mpw_int(&w, v); EXPECT(&w, __VA_ARGS__)
	I(0, 0x00);
	I(5, 0x05);
	I(200, 0xcc, 200);
	I(-1, 0xff);
	I(-32, 0xe0);
	I(-33, 0xd0, 0xdf);
	I(-128, 0xd0, 0x80);
	I(-129, 0xd1, 0xff, 0x7f);
	I(-32768, 0xd1, 0x80, 0x00);
	I(-32769, 0xd2, 0xff, 0xff, 0x7f, 0xff);
	I(INT32_MIN, 0xd2, 0x80, 0, 0, 0);
	I((int64_t)INT32_MIN - 1, 0xd3, 0xff, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff);
	I(INT64_MIN, 0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0);
#undef I
}

static void test_len_forms(void **state)
{
	static char s[70000];
	struct mpw w;
	static const struct {
		size_t n;
		uint8_t head[5];
		size_t hlen;
	} str[] = {
		{ 0, { 0xa0 }, 1 }, { 31, { 0xbf }, 1 }, { 32, { 0xd9, 32 }, 2 },
		{ 255, { 0xd9, 255 }, 2 }, { 256, { 0xda, 1, 0 }, 3 },
		{ 65535, { 0xda, 0xff, 0xff }, 3 },
		{ 65536, { 0xdb, 0, 1, 0, 0 }, 5 },
	}, bin[] = {
		{ 0, { 0xc4, 0 }, 2 }, { 31, { 0xc4, 31 }, 2 },
		{ 255, { 0xc4, 255 }, 2 }, { 256, { 0xc5, 1, 0 }, 3 },
		{ 65536, { 0xc6, 0, 1, 0, 0 }, 5 },
	};

	memset(s, 's', sizeof(s));
	for (size_t k = 0; k < sizeof(str) / sizeof(str[0]); k++) {
		mpw_init(&w, buf, sizeof(buf));
		mpw_str(&w, s, str[k].n);
		assert_false(w.overflow);
		assert_int_equal(w.len, str[k].hlen + str[k].n);
		assert_memory_equal(buf, str[k].head, str[k].hlen);
		assert_memory_equal(buf + str[k].hlen, s, str[k].n);
	}
	for (size_t k = 0; k < sizeof(bin) / sizeof(bin[0]); k++) {
		mpw_init(&w, buf, sizeof(buf));
		mpw_bin(&w, s, bin[k].n);
		assert_false(w.overflow);
		assert_int_equal(w.len, bin[k].hlen + bin[k].n);
		assert_memory_equal(buf, bin[k].head, bin[k].hlen);
	}
	mpw_init(&w, buf, sizeof(buf));
	mpw_str(&w, NULL, 0);
	EXPECT(&w, 0xa0);

#define C(fn, n, ...) mpw_init(&w, buf, sizeof(buf)); fn(&w, n); EXPECT(&w, __VA_ARGS__)
	C(mpw_map, 0, 0x80);
	C(mpw_map, 15, 0x8f);
	C(mpw_map, 16, 0xde, 0, 16);
	C(mpw_map, 65535, 0xde, 0xff, 0xff);
	C(mpw_map, 65536, 0xdf, 0, 1, 0, 0);
	C(mpw_map, UINT32_MAX, 0xdf, 0xff, 0xff, 0xff, 0xff);
	C(mpw_array, 0, 0x90);
	C(mpw_array, 15, 0x9f);
	C(mpw_array, 16, 0xdc, 0, 16);
	C(mpw_array, 65536, 0xdd, 0, 1, 0, 0);
	C(mpw_bool, true, 0xc3);
	C(mpw_bool, false, 0xc2);
#undef C
	mpw_init(&w, buf, sizeof(buf));
	mpw_nil(&w);
	mpw_raw(&w, "\x01\x02", 2);
	mpw_raw(&w, NULL, 0);
	EXPECT(&w, 0xc0, 0x01, 0x02);
}

static void test_overflow(void **state)
{
	uint8_t b[8];
	struct mpw w;

	memset(b, 0xee, sizeof(b));
	mpw_init(&w, b, 4);
	mpw_uint(&w, 1);                /* 1 byte */
	mpw_uint(&w, 0x10000);          /* 5 bytes: does not fit */
	assert_true(w.overflow);
	assert_int_equal(w.len, 1);
	mpw_nil(&w);                    /* would fit, but dropped after overflow */
	assert_int_equal(w.len, 1);
	for (size_t k = 1; k < sizeof(b); k++)
		assert_int_equal(b[k], 0xee);

	/* Exactly full is not overflow. */
	memset(b, 0xee, sizeof(b));
	mpw_init(&w, b, 4);
	mpw_str(&w, "abc", 3);
	assert_false(w.overflow);
	assert_int_equal(w.len, 4);
	mpw_raw(&w, "", 0);
	assert_false(w.overflow);
	mpw_raw(&w, "x", 1);
	assert_true(w.overflow);
	assert_int_equal(b[4], 0xee);

	/* Zero capacity. */
	mpw_init(&w, b, 0);
	mpw_nil(&w);
	assert_true(w.overflow);
	assert_int_equal(w.len, 0);

	/* Lengths msgpack cannot represent. */
	if (sizeof(size_t) > 4) {
		mpw_init(&w, b, sizeof(b));
		mpw_bin(&w, b, (size_t)UINT32_MAX + 1);
		assert_true(w.overflow);
		assert_int_equal(w.len, 0);
	}
}

static void test_roundtrip_reader(void **state)
{
	struct mpw w;
	struct iovec iov;
	struct mpr r;
	uint64_t u;
	uint32_t n;
	char s[16];
	size_t len;
	uint8_t bin[4];

	mpw_init(&w, buf, sizeof(buf));
	mpw_map(&w, 3);
	mpw_uint(&w, 1);
	mpw_uint(&w, 0x123456789aull);
	mpw_uint(&w, 2);
	mpw_str(&w, "hello", 5);
	mpw_uint(&w, 3);
	mpw_bin(&w, "\x01\x02\x03\x04", 4);
	mpw_array(&w, 4);
	mpw_int(&w, -100000);
	mpw_nil(&w);
	mpw_bool(&w, true);
	mpw_int(&w, 7);
	assert_false(w.overflow);

	mpr_init_buf(&r, &iov, buf, w.len);
	assert_int_equal(mpr_read_map(&r, &n), MPR_OK);
	assert_int_equal(n, 3);
	assert_int_equal(mpr_read_uint(&r, &u), MPR_OK);
	assert_int_equal(u, 1);
	assert_int_equal(mpr_read_uint(&r, &u), MPR_OK);
	assert_true(u == 0x123456789aull);
	assert_int_equal(mpr_read_uint(&r, &u), MPR_OK);
	assert_int_equal(mpr_read_str(&r, s, sizeof(s), &len), MPR_OK);
	assert_string_equal(s, "hello");
	assert_int_equal(mpr_read_uint(&r, &u), MPR_OK);
	assert_int_equal(mpr_read_bin_exact(&r, bin, 4), MPR_OK);
	assert_memory_equal(bin, "\x01\x02\x03\x04", 4);
	assert_int_equal(mpr_skip_value(&r, 1), MPR_OK);
	assert_int_equal(mpr_left(&r), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uint_forms),
		cmocka_unit_test(test_int_forms),
		cmocka_unit_test(test_len_forms),
		cmocka_unit_test(test_overflow),
		cmocka_unit_test(test_roundtrip_reader),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
