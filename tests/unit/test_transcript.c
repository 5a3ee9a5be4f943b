/*
 * test_transcript.c - the authentication transcript's byte layout (the
 * one PROTOCOL.md section 6.7 documents) and the public key text form.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "transcript.h"

static void test_layout(void **state)
{
	uint8_t ch[32], nonce[32], pk[32], out[TRANSCRIPT_LEN];
	const char *broker = "0123456789abcdef0123456789abcdef";
	struct transcript_in in = {
		.ver = 0x01020304, .broker = broker,
		.conn = 0x1122334455667788ull, .challenge = ch,
		.nonce = nonce, .uid = 0xa0b0c0d0, .pk = pk,
	};
	static const uint8_t label[32] = "ipchub auth v1 client";
	(void)state;

	memset(ch, 0xc1, sizeof(ch));
	memset(nonce, 0x4e, sizeof(nonce));
	memset(pk, 0x9b, sizeof(pk));
	memset(out, 0xee, sizeof(out)); /* every byte must be written */
	transcript_build(out, &in);
	assert_memory_equal(out, label, 32);
	assert_memory_equal(out + 32, "\x01\x02\x03\x04", 4);
	assert_memory_equal(out + 36, broker, 32);
	assert_memory_equal(out + 68, "\x11\x22\x33\x44\x55\x66\x77\x88", 8);
	assert_memory_equal(out + 76, ch, 32);
	assert_memory_equal(out + 108, nonce, 32);
	assert_memory_equal(out + 140, "\xa0\xb0\xc0\xd0", 4);
	assert_memory_equal(out + 144, pk, 32);
	assert_int_equal(TRANSCRIPT_LEN, 176);

	/* Any input change changes the bytes (here: the connection). */
	uint8_t other[TRANSCRIPT_LEN];
	in.conn++;
	transcript_build(other, &in);
	assert_true(memcmp(out, other, sizeof(out)) != 0);
}

static void test_pktext(void **state)
{
	uint8_t pk[32], back[32];
	char text[PKTEXT_LEN + 1];
	(void)state;

	for (int i = 0; i < 32; i++)
		pk[i] = (uint8_t)(i * 37 + 1);
	pktext_format(pk, text, sizeof(text));
	assert_int_equal(strlen(text), PKTEXT_LEN);
	assert_memory_equal(text, "ed25519:01264b", 14);
	assert_int_equal(pktext_parse(text, strlen(text), back), 0);
	assert_memory_equal(back, pk, 32);
	/* Upper case is accepted. */
	text[10] = 'A';
	text[11] = 'B';
	assert_int_equal(pktext_parse(text, strlen(text), back), 0);
	assert_int_equal(back[1], 0xab);

	memset(back, 0x55, sizeof(back));
	assert_int_equal(pktext_parse(text, strlen(text) - 1, back), -1);
	assert_int_equal(pktext_parse("ed25519:", 8, back), -1);
	text[20] = 'g';
	assert_int_equal(pktext_parse(text, strlen(text), back), -1);
	text[20] = '0';
	text[0] = 'E';
	assert_int_equal(pktext_parse(text, strlen(text), back), -1);
	assert_int_equal(back[0], 0x55); /* untouched on failure */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout),
		cmocka_unit_test(test_pktext),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
