/*
 * test_policy.c - policy parsing (errors name the line) and matching
 * (exact, prefix, any; key and/or uid; open names; known keys).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "policy.h"

#define K1 "ed25519:1111111111111111111111111111111111111111111111111111111111111111"
#define K2 "ed25519:2222222222222222222222222222222222222222222222222222222222222222"

static struct policy *parse_ok(const char *text)
{
	struct policy *p = NULL;
	char err[512] = "";

	if (policy_parse(text, strlen(text), "pol", &p, err, sizeof(err)))
		fail_msg("parse: %s", err);
	return p;
}

static void expect_err_n(const char *text, size_t len, const char *want)
{
	struct policy *p = (struct policy *)0x1;
	char err[512] = "";

	assert_true(policy_parse(text, len, "pol", &p, err, sizeof(err)) < 0);
	assert_ptr_equal(p, (struct policy *)0x1); /* untouched */
	if (!strstr(err, want))
		fail_msg("expected '%s' in '%s'", want, err);
}

static void expect_err(const char *text, const char *want)
{
	expect_err_n(text, strlen(text), want);
}

static void test_match(void **state)
{
	uint8_t k1[32], k2[32];
	(void)state;

	memset(k1, 0x11, 32);
	memset(k2, 0x22, 32);
	struct policy *p = parse_ok("# c\n"
				    "allow svc.db key " K1 "   # trailing\n"
				    "allow svc.* uid 1000\n"
				    "allow both key " K2 " uid 7\n");
	assert_int_equal(p->n, 3);
	/* svc.db: k1 (any uid) or uid 1000 via svc.*. */
	assert_true(policy_allows(p, "svc.db", 6, k1, 5, true));
	assert_true(policy_allows(p, "svc.db", 6, NULL, 1000, true));
	assert_false(policy_allows(p, "svc.db", 6, k2, 5, true));
	assert_false(policy_allows(p, "svc.db", 6, NULL, 1000, false));
	/* prefix: "svc.x" yes, "svc" itself is not covered (open). */
	assert_false(policy_allows(p, "svc.x", 5, k1, 5, true));
	assert_true(policy_allows(p, "svc", 3, NULL, 5, true));
	assert_false(policy_covers(p, "svc", 3));
	assert_true(policy_covers(p, "svc.a.b", 7));
	/* both conditions required. */
	assert_true(policy_allows(p, "both", 4, k2, 7, true));
	assert_false(policy_allows(p, "both", 4, k2, 8, true));
	assert_false(policy_allows(p, "both", 4, NULL, 7, true));
	/* open names, and no policy at all. */
	assert_true(policy_allows(p, "other", 5, NULL, 0, false));
	assert_true(policy_allows(NULL, "svc.db", 6, NULL, 0, false));
	/* known keys */
	assert_true(policy_knows_key(p, k1));
	assert_true(policy_knows_key(p, k2));
	uint8_t k3[32];
	memset(k3, 0x33, 32);
	assert_false(policy_knows_key(p, k3));
	policy_free(p);

	p = parse_ok("allow * uid 0\n");
	assert_true(policy_covers(p, "anything", 8));
	assert_false(policy_allows(p, "anything", 8, k1, 1, true));
	assert_true(policy_allows(p, "anything", 8, NULL, 0, true));
	policy_free(p);
}

static void test_errors(void **state)
{
	(void)state;
	expect_err("", "pol: no rules");
	expect_err("# nothing\n\n", "no rules");
	expect_err("allow a uid 1\nallow b uid x y\n", "pol:2: ");
	expect_err("\n\n\nfoo\n", "pol:4: unknown directive 'foo'");
	expect_err("allow\n", "pol:1: 'allow' needs a name pattern");
	expect_err("allow a key\n", "pol:1: 'key' needs a public key");
	expect_err("allow a key " K1 " key " K2 "\n", "'key' given twice");
	expect_err("allow a uid\n", "'uid' needs a number");
	expect_err("allow a uid 4294967295\n", "bad uid");
	expect_err("allow a uid 99999999999\n", "bad uid");
	expect_err("allow .a uid 1\n", "bad pattern");
	expect_err("allow a.*.b uid 1\n", "bad pattern");
	expect_err("allow *.a uid 1\n", "bad pattern");
	expect_err("allow ipchub uid 1\n", "reserved");
	expect_err("allow ipchub.* uid 1\n", "reserved");
	expect_err_n("allow a uid 1\0\n", 15, "NUL");

	char big[IPCHUB_POLICY_MAX_LINE + 32];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	expect_err(big, "pol:1: line longer than");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_match),
		cmocka_unit_test(test_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
