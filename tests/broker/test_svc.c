/* test_svc.c - the ipchub.peers body: one map per name, sorted by name,
 * valid msgpack, and truncated (still valid) when over the size limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "conn.h"
#include "mpr.h"
#include "names.h"
#include "svc.h"
#include "wire.h"

static int setup(void **state)
{
	(void)state;
	return sodium_init() < 0 ? -1 : 0;
}

/* Reads the array header; returns the element count. */
static uint32_t read_array(struct mpr *r)
{
	uint8_t b, x[2];

	assert_int_equal(mpr_byte(r, &b), MPR_OK);
	if ((b & 0xf0) == 0x90)
		return b & 0x0f;
	assert_int_equal(b, 0xdc);
	assert_int_equal(mpr_copy(r, x, 2), MPR_OK);
	return (uint32_t)x[0] << 8 | x[1];
}

static void check_entry(struct mpr *r, char *name, size_t cap, uint64_t *id,
			const uint8_t *pk)
{
	uint32_t n;
	char key[8];
	size_t len;
	uint64_t v;
	uint8_t b, bin[32];

	assert_int_equal(mpr_read_map(r, &n), MPR_OK);
	assert_int_equal(n, pk ? 6 : 5);
	assert_int_equal(mpr_read_str(r, key, sizeof(key), &len), MPR_OK);
	assert_string_equal(key, "name");
	assert_int_equal(mpr_read_str(r, name, cap, &len), MPR_OK);
	assert_int_equal(mpr_read_str(r, key, sizeof(key), &len), MPR_OK);
	assert_string_equal(key, "conn");
	assert_int_equal(mpr_read_uint(r, id), MPR_OK);
	assert_int_equal(mpr_read_str(r, key, sizeof(key), &len), MPR_OK);
	assert_string_equal(key, "pid");
	assert_int_equal(mpr_read_uint(r, &v), MPR_OK);
	assert_int_equal(mpr_read_str(r, key, sizeof(key), &len), MPR_OK);
	assert_string_equal(key, "uid");
	assert_int_equal(mpr_read_uint(r, &v), MPR_OK);
	assert_int_equal(mpr_read_str(r, key, sizeof(key), &len), MPR_OK);
	assert_string_equal(key, "auth");
	assert_int_equal(mpr_byte(r, &b), MPR_OK);
	assert_int_equal(b, pk ? 0xc3 : 0xc2);
	if (!pk)
		return;
	assert_int_equal(mpr_read_str(r, key, sizeof(key), &len), MPR_OK);
	assert_string_equal(key, "key");
	assert_int_equal(mpr_read_bin_exact(r, bin, 32), MPR_OK);
	assert_memory_equal(bin, pk, 32);
}

static void test_peers(void **state)
{
	struct names t;
	struct conn *c1 = calloc(1, sizeof(*c1)), *c2 = calloc(1, sizeof(*c2));
	size_t len;
	uint8_t *body;
	struct mpr r;
	struct iovec iov;
	char name[256];
	uint64_t id;
	static const char *const want[] = {"a", "a.b", "b", "zz"};
	static const uint64_t want_id[] = {2, 1, 1, 2};

	(void)state;
	assert_int_equal(names_init(&t), 0);
	c1->id = 1;
	c1->cred.pid = 100;
	c2->id = 2;
	c2->cred.pid = 200;
	/* c2 proved a key: its entries carry it. */
	c2->auth.authenticated = true;
	memset(c2->auth.pk, 0xab, sizeof(c2->auth.pk));
	assert_int_equal(names_register(&t, &c1->names, c1, "b", 1, 64), 0);
	assert_int_equal(names_register(&t, &c2->names, c2, "zz", 2, 64), 0);
	assert_int_equal(names_register(&t, &c1->names, c1, "a.b", 3, 64), 0);
	assert_int_equal(names_register(&t, &c2->names, c2, "a", 1, 64), 0);

	body = svc_peers_body(&t, 1 << 20, &len);
	assert_non_null(body);
	assert_int_equal(mpr_validate(body, len, 64), MPR_OK);
	mpr_init_buf(&r, &iov, body, len);
	assert_int_equal(read_array(&r), 4);
	for (int i = 0; i < 4; i++) {
		check_entry(&r, name, sizeof(name), &id,
			    want_id[i] == 2 ? c2->auth.pk : NULL);
		assert_string_equal(name, want[i]);
		assert_int_equal(id, want_id[i]);
	}
	assert_int_equal(mpr_left(&r), 0);
	free(body);

	/* Room for two entries only: a shorter, still valid list. */
	body = svc_peers_body(&t, 70, &len);
	assert_non_null(body);
	assert_true(len <= 70);
	assert_int_equal(mpr_validate(body, len, 64), MPR_OK);
	mpr_init_buf(&r, &iov, body, len);
	assert_true(read_array(&r) < 4);
	free(body);

	names_release_all(&t, &c1->names);
	names_release_all(&t, &c2->names);
	body = svc_peers_body(&t, 1 << 20, &len);
	assert_int_equal(len, 1);
	assert_int_equal(body[0], 0x90); /* empty array */
	free(body);
	names_fini(&t);
	free(c1);
	free(c2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_peers),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
