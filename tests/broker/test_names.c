/* test_names.c - the name table: register (idempotent, taken, limit, bad
 * and reserved names), unregister, primary name order, release on
 * disconnect. Owners are dummy pointers: the table never dereferences
 * them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "names.h"
#include "wire.h"

#define REG(t, o, own, s, max) names_register(t, o, own, s, strlen(s), max)
#define UNREG(t, o, own, s) names_unregister(t, o, own, s, strlen(s))
#define LOOKUP(t, s) names_lookup(t, s, strlen(s))

static int setup(void **state)
{
	(void)state;
	return sodium_init() < 0 ? -1 : 0;
}

static void test_register(void **state)
{
	struct names t;
	struct names_owned a = {0}, b = {0};
	int A, B;

	(void)state;
	assert_int_equal(names_init(&t), 0);
	assert_int_equal(REG(&t, &a, &A, "svc.db", 64), WIRE_E_OK);
	assert_int_equal(REG(&t, &a, &A, "svc.db", 64), WIRE_E_OK);
	assert_int_equal(a.n, 1);
	assert_int_equal(REG(&t, &b, &B, "svc.db", 64), WIRE_E_NAME_TAKEN);
	assert_int_equal(REG(&t, &b, &B, "bad..name", 64), WIRE_E_BAD_NAME);
	assert_int_equal(REG(&t, &b, &B, ".x", 64), WIRE_E_BAD_NAME);
	assert_int_equal(REG(&t, &b, &B, "", 64), WIRE_E_BAD_NAME);
	assert_int_equal(REG(&t, &b, &B, "ipchub", 64), WIRE_E_BAD_NAME);
	assert_int_equal(REG(&t, &b, &B, "ipchub.peers", 64), WIRE_E_BAD_NAME);
	assert_int_equal(REG(&t, &b, &B, "ipchubx", 64), WIRE_E_OK);
	assert_ptr_equal(LOOKUP(&t, "svc.db"), &A);
	assert_ptr_equal(LOOKUP(&t, "ipchubx"), &B);
	assert_null(LOOKUP(&t, "svc.DB")); /* case-sensitive */
	assert_null(LOOKUP(&t, ""));
	assert_int_equal(names_count(&t), 2);
	names_release_all(&t, &a);
	names_release_all(&t, &b);
	assert_int_equal(names_count(&t), 0);
	names_fini(&t);
}

static void test_limit(void **state)
{
	struct names t;
	struct names_owned a = {0};
	int A;
	char n[16];

	(void)state;
	assert_int_equal(names_init(&t), 0);
	for (int i = 0; i < 3; i++) {
		snprintf(n, sizeof(n), "n%d", i);
		assert_int_equal(REG(&t, &a, &A, n, 3), WIRE_E_OK);
	}
	assert_int_equal(REG(&t, &a, &A, "n9", 3), WIRE_E_LIMIT);
	/* Re-registering a held name is not a new name. */
	assert_int_equal(REG(&t, &a, &A, "n1", 3), WIRE_E_OK);
	assert_int_equal(UNREG(&t, &a, &A, "n1"), WIRE_E_OK);
	assert_int_equal(REG(&t, &a, &A, "n9", 3), WIRE_E_OK);
	names_release_all(&t, &a);
	names_fini(&t);
}

static void test_unregister_primary(void **state)
{
	struct names t;
	struct names_owned a = {0}, b = {0};
	int A, B;
	size_t len;
	const char *p;

	(void)state;
	assert_int_equal(names_init(&t), 0);
	assert_null(names_primary(&a, &len));
	assert_int_equal(len, 0);
	assert_int_equal(REG(&t, &a, &A, "first", 64), WIRE_E_OK);
	assert_int_equal(REG(&t, &a, &A, "second", 64), WIRE_E_OK);
	assert_int_equal(REG(&t, &a, &A, "third", 64), WIRE_E_OK);
	p = names_primary(&a, &len);
	assert_int_equal(len, 5);
	assert_memory_equal(p, "first", 5);
	assert_int_equal(UNREG(&t, &b, &B, "first"), WIRE_E_NOT_OWNER);
	assert_int_equal(UNREG(&t, &a, &A, "nope"), WIRE_E_NOT_OWNER);
	assert_int_equal(UNREG(&t, &a, &A, "a..b"), WIRE_E_BAD_NAME);
	assert_int_equal(UNREG(&t, &a, &A, "first"), WIRE_E_OK);
	p = names_primary(&a, &len);
	assert_int_equal(len, 6);
	assert_memory_equal(p, "second", 6); /* the oldest still held */
	assert_null(LOOKUP(&t, "first"));
	/* Released names can be taken by others. */
	assert_int_equal(REG(&t, &b, &B, "first", 64), WIRE_E_OK);
	names_release_all(&t, &a);
	assert_null(LOOKUP(&t, "second"));
	assert_null(LOOKUP(&t, "third"));
	assert_ptr_equal(LOOKUP(&t, "first"), &B);
	assert_int_equal(a.n, 0);
	names_release_all(&t, &b);
	names_fini(&t);
}

static void test_many(void **state)
{
	struct names t;
	static struct names_owned o[100];
	static int own[100];
	char n[32];

	(void)state;
	assert_int_equal(names_init(&t), 0);
	for (int i = 0; i < 100; i++)
		for (int k = 0; k < 50; k++) {
			snprintf(n, sizeof(n), "c%d.n%d", i, k);
			assert_int_equal(REG(&t, &o[i], &own[i], n, 64), WIRE_E_OK);
		}
	assert_int_equal(names_count(&t), 5000);
	for (int i = 0; i < 100; i += 2)
		names_release_all(&t, &o[i]);
	for (int i = 0; i < 100; i++) {
		snprintf(n, sizeof(n), "c%d.n%d", i, 49);
		if (i % 2)
			assert_ptr_equal(LOOKUP(&t, n), &own[i]);
		else
			assert_null(LOOKUP(&t, n));
	}
	for (int i = 1; i < 100; i += 2)
		names_release_all(&t, &o[i]);
	assert_int_equal(names_count(&t), 0);
	names_fini(&t);
}

/* The one-entry cache answers like names_lookup() across every change
 * that can make it stale: unregister, release on disconnect, the name
 * taken over by another owner. */
static void test_lookup_cached(void **state)
{
	struct names t;
	struct names_owned a = {0}, b = {0};
	struct names_cache c = {0};
	int A, B;

	(void)state;
	assert_int_equal(names_init(&t), 0);
	assert_null(names_lookup_cached(&t, &c, "svc.db", 6));
	assert_int_equal(REG(&t, &a, &A, "svc.db", 64), WIRE_E_OK);
	/* A miss is not cached as a negative answer. */
	assert_ptr_equal(names_lookup_cached(&t, &c, "svc.db", 6), &A);
	assert_true(names_cache_hit(&t, &c, "svc.db", 6));
	assert_ptr_equal(names_lookup_cached(&t, &c, "svc.db", 6), &A);
	assert_false(names_cache_hit(&t, &c, "svc.dc", 6));
	assert_false(names_cache_hit(&t, &c, "svc.d", 5));
	/* Registering another name keeps the entry valid. */
	assert_int_equal(REG(&t, &b, &B, "svc.other", 64), WIRE_E_OK);
	assert_true(names_cache_hit(&t, &c, "svc.db", 6));
	/* Unregister, then the same name owned by B. */
	assert_int_equal(UNREG(&t, &a, &A, "svc.db"), WIRE_E_OK);
	assert_false(names_cache_hit(&t, &c, "svc.db", 6));
	assert_null(names_lookup_cached(&t, &c, "svc.db", 6));
	assert_int_equal(REG(&t, &b, &B, "svc.db", 64), WIRE_E_OK);
	assert_ptr_equal(names_lookup_cached(&t, &c, "svc.db", 6), &B);
	/* Release on disconnect, then A takes it back. */
	names_release_all(&t, &b);
	assert_false(names_cache_hit(&t, &c, "svc.db", 6));
	assert_null(names_lookup_cached(&t, &c, "svc.db", 6));
	assert_int_equal(REG(&t, &a, &A, "svc.db", 64), WIRE_E_OK);
	assert_ptr_equal(names_lookup_cached(&t, &c, "svc.db", 6), &A);
	names_release_all(&t, &a);
	names_fini(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_register),
		cmocka_unit_test(test_limit),
		cmocka_unit_test(test_unregister_primary),
		cmocka_unit_test(test_many),
		cmocka_unit_test(test_lookup_cached),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
