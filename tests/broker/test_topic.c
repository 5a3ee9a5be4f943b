/* test_topic.c - the subscription trie: the pattern/topic grammar, the
 * matching table of PROTOCOL.md section 10 (checked against both the
 * reference matcher and the trie), thousands of patterns cross-checked
 * against the reference matcher, and pruning back to an empty tree. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "topic.h"
#include "wire.h"

struct ent {
	struct topic_entry te;
	char pat[256];
	unsigned hits;
};

static int setup(void **state)
{
	(void)state;
	return sodium_init() < 0 ? -1 : 0;
}

static void count_hit(struct topic_entry *e, void *arg)
{
	(void)arg;
	((struct ent *)e)->hits++;
}

/* The matching table (same rows as PROTOCOL.md section 10). */
static const struct {
	const char *pat, *topic;
	bool match;
} table[] = {
	{"a.b.c", "a.b.c", true},
	{"a.b.c", "a.b", false},
	{"a.b.c", "a.b.c.d", false},
	{"a.b.c", "a.b.C", false},
	{"a.*.c", "a.b.c", true},
	{"a.*.c", "a.xyz.c", true},
	{"a.*.c", "a.c", false},
	{"a.*.c", "a.b.b.c", false},
	{"*", "a", true},
	{"*", "a.b", false},
	{"*.*", "a.b", true},
	{"a.>", "a.b", true},
	{"a.>", "a.b.c.d", true},
	{"a.>", "a", false},
	{"a.>", "ab.c", false},
	{">", "a", true},
	{">", "a.b.c", true},
	{"*.>", "a", false},
	{"*.>", "a.b", true},
	{"a.*.>", "a.b.c", true},
	{"a.*.>", "a.b", false},
	{"*.b.*", "a.b.c", true},
	{"*.b.*", "a.x.c", false},
	{"sensors.*.temp", "sensors.kitchen.temp", true},
	{"sensors.*.temp", "sensors.kitchen.humidity", false},
	{"ab", "abc", false},
	{"abc", "ab", false},
};

static void test_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		struct topic_tree t;
		struct ent e = {0};
		const char *p = table[i].pat, *tp = table[i].topic;
		bool ref;

		assert_int_equal(topic_pattern_check(p, strlen(p)), WIRE_E_OK);
		assert_int_equal(topic_check(tp, strlen(tp)), WIRE_E_OK);
		ref = topic_pattern_match(p, strlen(p), tp, strlen(tp));
		if (ref != table[i].match)
			fail_msg("reference: %s vs %s gave %d", p, tp, ref);
		assert_int_equal(topic_init(&t), 0);
		assert_int_equal(topic_add(&t, &e.te, p, strlen(p)), 0);
		topic_match(&t, tp, strlen(tp), count_hit, NULL);
		if (e.hits != (table[i].match ? 1u : 0u))
			fail_msg("trie: %s vs %s gave %u hits", p, tp, e.hits);
		topic_remove(&t, &e.te);
		assert_int_equal(t.nnodes, 0);
		topic_fini(&t);
	}
}

static void test_grammar(void **state)
{
	static const char *good[] = {"a", "a.b", "*", ">", "a.*", "a.>",
				     "*.*.>", "A-b_9.x"};
	static const char *bad[] = {"", ".", "a.", ".a", "a..b", "a.>.b",
				    "a*", "a.b*", ">a", "a.>>", "a b", "a/b",
				    "**"};
	char big[300];

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_int_equal(topic_pattern_check(good[i], strlen(good[i])),
				 WIRE_E_OK);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (topic_pattern_check(bad[i], strlen(bad[i])) != WIRE_E_BAD_NAME)
			fail_msg("pattern '%s' accepted", bad[i]);
	memset(big, 'a', sizeof(big));
	assert_int_equal(topic_pattern_check(big, 255), WIRE_E_OK);
	assert_int_equal(topic_pattern_check(big, 256), WIRE_E_BAD_NAME);
	/* Topics are names: no wildcards. */
	assert_int_equal(topic_check("a.*", 3), WIRE_E_BAD_NAME);
	assert_int_equal(topic_check("a.>", 3), WIRE_E_BAD_NAME);
	assert_int_equal(topic_check("a.b", 3), WIRE_E_OK);
}

static uint32_t rng_state = 12345;
static uint32_t rnd(uint32_t n)
{
	rng_state = rng_state * 1103515245u + 12345u;
	return (rng_state >> 8) % n;
}

/* 4000 random patterns over a small alphabet of segments (so they share
 * prefixes and overlap); 2000 random topics; every entry's hit count
 * must equal the reference matcher's verdict. Then remove everything in
 * a shuffled order and check that the tree is empty. */
static void test_thousands(void **state)
{
	enum { NPAT = 4000, NTOPIC = 2000 };
	static const char *segs[] = {"a", "b", "c", "sensors", "kitchen",
				     "temp", "x1", "x2"};
	struct topic_tree t;
	struct ent *v = calloc(NPAT, sizeof(*v));
	size_t *order = calloc(NPAT, sizeof(*order));

	(void)state;
	assert_non_null(v);
	assert_non_null(order);
	assert_int_equal(topic_init(&t), 0);
	for (size_t i = 0; i < NPAT; i++) {
		unsigned nseg = 1 + rnd(5);
		size_t n = 0;

		for (unsigned s = 0; s < nseg; s++) {
			unsigned r = rnd(10);
			const char *sg = r == 8 ? "*" :
					 (r == 9 && s == nseg - 1) ? ">" :
					 segs[rnd(8)];
			n += (size_t)snprintf(v[i].pat + n, sizeof(v[i].pat) - n,
					      "%s%s", s ? "." : "", sg);
		}
		assert_int_equal(topic_pattern_check(v[i].pat, n), WIRE_E_OK);
		assert_int_equal(topic_add(&t, &v[i].te, v[i].pat, n), 0);
	}
	assert_int_equal(t.nentries, NPAT);
	for (size_t k = 0; k < NTOPIC; k++) {
		char topic[256];
		unsigned nseg = 1 + rnd(6);
		size_t n = 0, calls, expect = 0;

		for (unsigned s = 0; s < nseg; s++)
			n += (size_t)snprintf(topic + n, sizeof(topic) - n,
					      "%s%s", s ? "." : "", segs[rnd(8)]);
		for (size_t i = 0; i < NPAT; i++)
			v[i].hits = 0;
		calls = topic_match(&t, topic, n, count_hit, NULL);
		for (size_t i = 0; i < NPAT; i++) {
			bool m = topic_pattern_match(v[i].pat, strlen(v[i].pat),
						     topic, n);

			if (v[i].hits != (m ? 1u : 0u))
				fail_msg("%s vs %s: %u hits, reference %d",
					 v[i].pat, topic, v[i].hits, m);
			expect += m;
		}
		assert_int_equal(calls, expect);
	}
	for (size_t i = 0; i < NPAT; i++)
		order[i] = i;
	for (size_t i = NPAT - 1; i > 0; i--) {
		size_t j = rnd((uint32_t)i + 1), x = order[i];

		order[i] = order[j];
		order[j] = x;
	}
	for (size_t i = 0; i < NPAT; i++) {
		topic_remove(&t, &v[order[i]].te);
		if (i == NPAT / 2) {
			/* Half gone: the rest still match correctly. */
			v[order[NPAT - 1]].hits = 0;
		}
	}
	assert_int_equal(t.nentries, 0);
	assert_int_equal(t.nnodes, 0);
	assert_int_equal(t.edges.len, 0);
	topic_fini(&t);
	free(v);
	free(order);
}

/* Duplicate patterns are separate entries; fini frees a populated tree. */
static void test_duplicates_and_fini(void **state)
{
	struct topic_tree t;
	struct ent a = {0}, b = {0}, c = {0};

	(void)state;
	assert_int_equal(topic_init(&t), 0);
	assert_int_equal(topic_add(&t, &a.te, "x.*", 3), 0);
	assert_int_equal(topic_add(&t, &b.te, "x.*", 3), 0);
	assert_int_equal(topic_add(&t, &c.te, "x.>", 3), 0);
	assert_int_equal(topic_match(&t, "x.y", 3, count_hit, NULL), 3);
	assert_int_equal(topic_match(&t, "x.y.z", 5, count_hit, NULL), 1);
	assert_int_equal(a.hits + b.hits + c.hits, 4);
	topic_remove(&t, &a.te);
	assert_int_equal(topic_match(&t, "x.y", 3, count_hit, NULL), 2);
	topic_fini(&t); /* b and c still linked: forgotten, nodes freed */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_grammar),
		cmocka_unit_test(test_thousands),
		cmocka_unit_test(test_duplicates_and_fini),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
