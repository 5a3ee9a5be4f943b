/*
 * test_json.c - unit tests of the CLI's JSON <-> msgpack conversion.
 *
 * Tables of JSON text and the exact msgpack bytes it must encode to, and
 * of msgpack bytes and the JSON text they must decode to (including the
 * $bin/$ext shapes, non-string keys, big integers, unicode, and what must
 * be refused: invalid UTF-8, NaN, malformed input).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ipchub.h"
#include "limits.h"
#include "json.h"

/* Parse "c3 a1 61" style hex into out; returns the byte count. */
static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
	size_t n = 0;
	unsigned v;

	while (*hex) {
		if (*hex == ' ') {
			hex++;
			continue;
		}
		assert_true(sscanf(hex, "%2x", &v) == 1);
		assert_true(n < cap);
		out[n++] = (uint8_t)v;
		hex += 2;
	}
	return n;
}

struct pair {
	const char *json; /* input, and expected output when back is NULL */
	const char *hex;  /* msgpack */
	const char *back; /* expected JSON from the msgpack, if different */
};

static const struct pair pairs[] = {
	{"null", "c0", NULL},
	{"true", "c3", NULL},
	{"false", "c2", NULL},
	{"0", "00", NULL},
	{"-1", "ff", NULL},
	{"127", "7f", NULL},
	{"128", "cc 80", NULL},
	{"-33", "d0 df", NULL},
	{"65536", "ce 00 01 00 00", NULL},
	{"9223372036854775807", "cf 7f ff ff ff ff ff ff ff", NULL},
	{"-9223372036854775808", "d3 80 00 00 00 00 00 00 00", NULL},
	{"1.5", "cb 3f f8 00 00 00 00 00 00", NULL},
	{"-0.0", "cb 80 00 00 00 00 00 00 00", NULL},
	{"\"\"", "a0", NULL},
	{"\"h\\u00e9llo\"", "a6 68 c3 a9 6c 6c 6f", "\"h\xc3\xa9llo\""},
	{"\"\xf0\x9f\x98\x80\"", "a4 f0 9f 98 80", NULL},
	{"\"a\\u0000b\"", "a3 61 00 62", NULL},
	{"[]", "90", NULL},
	{"{}", "80", NULL},
	{"[1,[2,[3]]]", "92 01 92 02 91 03", NULL},
	{"{\"a\":1,\"b\":[true,null]}", "82 a1 61 01 a1 62 92 c3 c0", NULL},
	{"{\"z\":{\"y\":{}}}", "81 a1 7a 81 a1 79 80", NULL},
	{"{\"$bin\":\"AAEC\"}", "c4 03 00 01 02", NULL},
	{"{\"$bin\":\"\"}", "c4 00", NULL},
	{"{\"$ext\":5,\"$data\":\"AAE=\"}", "d5 05 00 01", NULL},
	{"{\"$ext\":-1,\"$data\":\"\"}", "c7 00 ff", NULL},
	{"{\"$ext\":1,\"$data\":\"AAECAw==\"}", "d6 01 00 01 02 03", NULL},
	/* Not the reserved shape: an ordinary map. */
	{"{\"$bin\":\"AAEC\",\"x\":1}",
	 "82 a4 24 62 69 6e a4 41 41 45 43 a1 78 01", NULL},
	{"{\"$bin\":1}", "81 a4 24 62 69 6e 01", NULL},
};

static void test_pairs(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		const struct pair *p = &pairs[i];
		uint8_t want[64];
		size_t n = unhex(p->hex, want, sizeof(want));
		ipchub_pack pk;
		json_t *j = NULL;
		char err[256], *text;

		ipchub_pack_init(&pk);
		if (cli_json_text_to_msgpack(p->json, strlen(p->json), &pk.pk,
					     err, sizeof(err)) != IPCHUB_OK)
			fail_msg("%s: %s", p->json, err);
		if (pk.buf.size != n || memcmp(pk.buf.data, want, n) != 0)
			fail_msg("%s: wrong msgpack", p->json);
		ipchub_pack_destroy(&pk);

		if (cli_json_from_body(want, n, &j, err, sizeof(err)) != IPCHUB_OK)
			fail_msg("%s: back: %s", p->hex, err);
		text = cli_json_dump(j);
		assert_non_null(text);
		assert_string_equal(text, p->back ? p->back : p->json);
		free(text);
		json_decref(j);
	}
}

struct from_mp {
	const char *hex;
	int rc;
	const char *json; /* expected when rc == IPCHUB_OK */
};

static const struct from_mp from_cases[] = {
	/* uint64 beyond int64: a real (documented loss of precision). */
	{"cf ff ff ff ff ff ff ff ff", IPCHUB_OK, "1.8446744073709552e19"},
	{"cf 80 00 00 00 00 00 00 00", IPCHUB_OK, "9.2233720368547758e18"},
	{"ca 3f c0 00 00", IPCHUB_OK, "1.5"},
	{"d0 80", IPCHUB_OK, "-128"},
	{"d9 01 78", IPCHUB_OK, "\"x\""},
	{"c5 00 02 ff 00", IPCHUB_OK, "{\"$bin\":\"/wA=\"}"},
	{"c7 02 07 00 01", IPCHUB_OK, "{\"$ext\":7,\"$data\":\"AAE=\"}"},
	/* Non-string keys become their compact JSON text. */
	{"81 01 a1 61", IPCHUB_OK, "{\"1\":\"a\"}"},
	{"81 92 01 02 c0", IPCHUB_OK, "{\"[1,2]\":null}"},
	{"81 c3 01", IPCHUB_OK, "{\"true\":1}"},
	{"81 81 a1 6b 01 02", IPCHUB_OK, "{\"{\\\"k\\\":1}\":2}"},
	{"81 c4 01 00 02", IPCHUB_OK, "{\"{\\\"$bin\\\":\\\"AA==\\\"}\":2}"},
	/* A later duplicate key wins. */
	{"82 a1 61 01 a1 61 02", IPCHUB_OK, "{\"a\":2}"},
	/* Refused: no faithful JSON form. */
	{"a2 ff fe", IPCHUB_E_BAD_BODY, NULL},
	{"a3 ed a0 80", IPCHUB_E_BAD_BODY, NULL}, /* UTF-16 surrogate */
	{"a2 c0 80", IPCHUB_E_BAD_BODY, NULL},    /* overlong NUL */
	{"81 a1 ff 01", IPCHUB_E_BAD_BODY, NULL},
	{"91 a1 80", IPCHUB_E_BAD_BODY, NULL},
	{"ca 7f c0 00 00", IPCHUB_E_BAD_BODY, NULL},
	{"cb 7f f0 00 00 00 00 00 00", IPCHUB_E_BAD_BODY, NULL},
	{"cb ff f0 00 00 00 00 00 00", IPCHUB_E_BAD_BODY, NULL},
	/* Not one valid msgpack value. */
	{"c1", IPCHUB_E_BAD_BODY, NULL},
	{"01 02", IPCHUB_E_BAD_BODY, NULL},
	{"92 01", IPCHUB_E_BAD_BODY, NULL},
	{"dd ff ff ff ff", IPCHUB_E_BAD_BODY, NULL},
};

static void test_from_msgpack(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(from_cases) / sizeof(from_cases[0]); i++) {
		const struct from_mp *c = &from_cases[i];
		uint8_t b[64];
		size_t n = unhex(c->hex, b, sizeof(b));
		json_t *j = NULL;
		char err[256] = "", *text;
		int rc = cli_json_from_body(b, n, &j, err, sizeof(err));

		if (rc != c->rc)
			fail_msg("%s: rc %d, want %d (%s)", c->hex, rc, c->rc, err);
		if (rc != IPCHUB_OK) {
			assert_null(j);
			assert_true(err[0] != '\0');
			continue;
		}
		text = cli_json_dump(j);
		assert_non_null(text);
		if (strcmp(text, c->json) != 0)
			fail_msg("%s: got %s, want %s", c->hex, text, c->json);
		free(text);
		json_decref(j);
	}
}

static void test_empty_body_is_null(void **state)
{
	json_t *j = NULL;
	char err[64];

	(void)state;
	assert_int_equal(cli_json_from_body(NULL, 0, &j, err, sizeof(err)),
			 IPCHUB_OK);
	assert_true(json_is_null(j));
	json_decref(j);
}

static void test_bad_json(void **state)
{
	static const char *const bad[] = {
		"",
		"{",
		"nope",
		"[1,]",
		"1 2",
		"18446744073709551616", /* beyond int64 */
		"{\"$bin\":\"!!!!\"}",
		"{\"$bin\":\"AAE\"}",   /* missing padding */
		"{\"$ext\":300,\"$data\":\"\"}",
		"{\"$ext\":1,\"$data\":\"*\"}",
		"\"\xff\"", /* invalid UTF-8 in the input */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ipchub_pack pk;
		char err[256] = "";

		ipchub_pack_init(&pk);
		if (cli_json_text_to_msgpack(bad[i], strlen(bad[i]), &pk.pk, err,
					     sizeof(err)) != IPCHUB_E_INVALID)
			fail_msg("accepted: %s", bad[i]);
		assert_true(err[0] != '\0');
		ipchub_pack_destroy(&pk);
	}
}

/* Deep nesting: the body depth limit converts both ways; one more level is
 * refused by the body checker (not the converter) before it is sent. */
static void test_deep(void **state)
{
	char text[300];
	ipchub_pack pk;
	json_t *j = NULL;
	char err[256];
	size_t n = 0;

	(void)state;
	for (unsigned i = 0; i < IPCHUB_MAX_BODY_DEPTH; i++)
		text[n++] = '[';
	text[n++] = '1';
	for (unsigned i = 0; i < IPCHUB_MAX_BODY_DEPTH; i++)
		text[n++] = ']';
	text[n] = '\0';
	ipchub_pack_init(&pk);
	assert_int_equal(cli_json_text_to_msgpack(text, n, &pk.pk, err,
						  sizeof(err)),
			 IPCHUB_OK);
	assert_int_equal(ipchub_body_check(pk.buf.data, pk.buf.size), IPCHUB_OK);
	assert_int_equal(cli_json_from_body(pk.buf.data, pk.buf.size, &j, err,
					    sizeof(err)),
			 IPCHUB_OK);
	json_decref(j);

	ipchub_pack_reset(&pk);
	memmove(text + 1, text, n + 1);
	text[0] = '[';
	text[n + 1] = ']';
	text[n + 2] = '\0';
	assert_int_equal(cli_json_text_to_msgpack(text, n + 2, &pk.pk, err,
						  sizeof(err)),
			 IPCHUB_OK);
	assert_int_equal(ipchub_body_check(pk.buf.data, pk.buf.size),
			 IPCHUB_E_BAD_BODY);
	ipchub_pack_destroy(&pk);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pairs),
		cmocka_unit_test(test_from_msgpack),
		cmocka_unit_test(test_empty_body_is_null),
		cmocka_unit_test(test_bad_json),
		cmocka_unit_test(test_deep),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
