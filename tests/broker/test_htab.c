/* test_htab.c - the open-addressing index: insert, probe, remove with
 * backward shift (checked against a brute-force model under churn), and
 * iteration. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "htab.h"

static int setup(void **state)
{
	(void)state;
	return sodium_init() < 0 ? -1 : 0;
}

static bool contains(const struct htab *t, uint64_t h, const void *item)
{
	struct htab_probe p;

	for (void *it = htab_probe_first(t, h, &p); it;
	     it = htab_probe_next(t, h, &p))
		if (it == item)
			return true;
	return false;
}

static void test_basic(void **state)
{
	struct htab t;
	int a, b, c;
	size_t pos = 0, n = 0;

	(void)state;
	assert_int_equal(htab_init(&t, 0), 0);
	assert_int_equal(htab_insert(&t, 5, &a), 0);
	assert_int_equal(htab_insert(&t, 5, &b), 0); /* same hash */
	assert_int_equal(htab_insert(&t, 21, &c), 0); /* same home slot */
	assert_int_equal(htab_len(&t), 3);
	assert_true(contains(&t, 5, &a));
	assert_true(contains(&t, 5, &b));
	assert_true(contains(&t, 21, &c));
	assert_false(contains(&t, 21, &a));
	while (htab_next(&t, &pos))
		n++;
	assert_int_equal(n, 3);
	assert_true(htab_remove(&t, 5, &a));
	assert_false(htab_remove(&t, 5, &a));
	assert_true(contains(&t, 5, &b));
	assert_true(contains(&t, 21, &c));
	assert_int_equal(htab_len(&t), 2);
	htab_fini(&t);
	htab_fini(&t); /* idempotent */
}

static void test_hash_keyed(void **state)
{
	struct htab t1, t2;

	(void)state;
	assert_int_equal(htab_init(&t1, 0), 0);
	assert_int_equal(htab_init(&t2, 0), 0);
	assert_int_equal(htab_hash(&t1, "abc", 3), htab_hash(&t1, "abc", 3));
	/* Different random keys: collisions cannot be precomputed. */
	assert_int_not_equal(htab_hash(&t1, "abc", 3), htab_hash(&t2, "abc", 3));
	htab_fini(&t1);
	htab_fini(&t2);
}

/* Random churn with small hashes (many collisions and wrap-around runs),
 * checked against a flat model after every step. */
static void test_churn(void **state)
{
	enum { N = 2000, STEPS = 20000 };
	static char items[N];
	static bool in[N];
	static uint64_t hash[N];
	struct htab t;
	unsigned seed = 12345;

	(void)state;
	assert_int_equal(htab_init(&t, 0), 0);
	for (int i = 0; i < N; i++)
		hash[i] = (uint64_t)(rand_r(&seed) % 97) * 0x9e3779b97f4a7c15ull;
	for (int s = 0; s < STEPS; s++) {
		int i = rand_r(&seed) % N;

		if (in[i]) {
			assert_true(htab_remove(&t, hash[i], &items[i]));
			in[i] = false;
		} else {
			assert_int_equal(htab_insert(&t, hash[i], &items[i]), 0);
			in[i] = true;
		}
		if (s % 997 == 0) {
			size_t cnt = 0;

			for (int k = 0; k < N; k++) {
				assert_int_equal(contains(&t, hash[k], &items[k]),
						 in[k]);
				cnt += in[k];
			}
			assert_int_equal(htab_len(&t), cnt);
		}
	}
	htab_fini(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic),
		cmocka_unit_test(test_hash_keyed),
		cmocka_unit_test(test_churn),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
