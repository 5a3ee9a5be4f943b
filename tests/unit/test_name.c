/*
 * test_name.c - the name grammar, as a table of names and verdicts.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "limits.h"
#include "name.h"
#include "wire.h"

static void test_grammar_table(void **state)
{
	static const struct {
		const char *s;
		bool ok;
		bool reserved;
	} t[] = {
		{ "a", true, false },
		{ "svc", true, false },
		{ "svc.echo", true, false },
		{ "A-Z_a-z.0-9", true, false },
		{ "-lead-dash", true, false },
		{ "_", true, false },
		{ "a.b.c", true, false },
		{ "Ipchub", true, false },      /* case-sensitive */
		{ "ipchubx", true, false },
		{ "ipchub-x", true, false },
		{ "ipchub", true, true },
		{ "ipchub.peers", true, true },
		{ "ipchub.a.b", true, true },
		{ "", false, false },
		{ ".", false, false },
		{ ".a", false, false },
		{ "a.", false, false },
		{ "a..b", false, false },
		{ "ipchub.", false, false },
		{ "a b", false, false },
		{ "a/b", false, false },
		{ "a:b", false, false },
		{ "a*", false, false },
		{ "\xc3\xa9t\xc3\xa9", false, false },
		{ "tab\t", false, false },
	};

	for (size_t k = 0; k < sizeof(t) / sizeof(t[0]); k++) {
		size_t n = strlen(t[k].s);
		int rc = name_check(t[k].s, n);

		if ((rc == WIRE_E_OK) != t[k].ok)
			fail_msg("name \"%s\": got %d", t[k].s, rc);
		assert_true(rc == WIRE_E_OK || rc == WIRE_E_BAD_NAME);
		if (t[k].ok && name_is_reserved(t[k].s, n) != t[k].reserved)
			fail_msg("name \"%s\": reserved wrong", t[k].s);
	}
}

static void test_lengths_and_nul(void **state)
{
	char s[IPCHUB_MAX_NAME + 2];

	memset(s, 'n', sizeof(s));
	assert_int_equal(name_check(s, IPCHUB_MAX_NAME), WIRE_E_OK);
	assert_int_equal(name_check(s, IPCHUB_MAX_NAME + 1), WIRE_E_BAD_NAME);
	assert_int_equal(name_check(s, 0), WIRE_E_BAD_NAME);
	assert_int_equal(name_check(NULL, 0), WIRE_E_BAD_NAME);
	/* not NUL-terminated: only len bytes count */
	assert_int_equal(name_check("ab.", 2), WIRE_E_OK);
	/* NUL inside */
	assert_int_equal(name_check("a\0b", 3), WIRE_E_BAD_NAME);
	/* reserved checks respect len too */
	assert_true(name_is_reserved("ipchub.x", 6));
	assert_false(name_is_reserved("ipchub.x", 5));
	assert_true(name_is_reserved(WIRE_SVC_PEERS, strlen(WIRE_SVC_PEERS)));
	assert_true(name_is_reserved(WIRE_SVC_PING, strlen(WIRE_SVC_PING)));
	assert_true(name_is_reserved(WIRE_SVC_STATS, strlen(WIRE_SVC_STATS)));
}

static void test_remote_addresses(void **state)
{
	static const struct {
		const char *s;
		bool ok;
	} t[] = {
		{ "svc", true },            /* a name is an address */
		{ "svc@hub-b", true },
		{ "svc.echo@b_2", true },
		{ "a@B", true },
		{ "@hub", false },          /* no local part */
		{ "svc@", false },          /* no hub */
		{ "svc@a@b", false },       /* two '@' */
		{ "svc@hub.b", false },     /* a hub is one NATS token */
		{ "svc.@hub", false },      /* local part breaks the grammar */
		{ "svc@hub*", false },
		{ "svc@hub>", false },
	};
	char s[IPCHUB_MAX_NAME + 2];

	(void)state;
	for (size_t k = 0; k < sizeof(t) / sizeof(t[0]); k++) {
		size_t n = strlen(t[k].s);

		if ((name_check_addr(t[k].s, n) == WIRE_E_OK) != t[k].ok)
			fail_msg("address \"%s\": expected %s", t[k].s,
				 t[k].ok ? "ok" : "bad");
		if (t[k].ok)
			assert_int_equal(name_is_remote(t[k].s, n),
					 strchr(t[k].s, '@') != NULL);
	}
	/* Topics and the other names stay without '@'. */
	assert_int_equal(name_check("svc@hub", 7), WIRE_E_BAD_NAME);
	/* Lengths: the hub part, and the whole address. */
	memset(s, 'h', sizeof(s));
	s[0] = 'a';
	s[1] = '@';
	assert_int_equal(name_check_addr(s, 2 + IPCHUB_MAX_HUB), WIRE_E_OK);
	assert_int_equal(name_check_addr(s, 3 + IPCHUB_MAX_HUB), WIRE_E_BAD_NAME);
	memset(s, 'n', sizeof(s));
	s[IPCHUB_MAX_NAME - 2] = '@';
	assert_int_equal(name_check_addr(s, IPCHUB_MAX_NAME), WIRE_E_OK);
	assert_int_equal(name_check_addr(s, IPCHUB_MAX_NAME + 1), WIRE_E_BAD_NAME);
	assert_int_equal(name_check_hub("hub-1", 5), WIRE_E_OK);
	assert_int_equal(name_check_hub("hub.1", 5), WIRE_E_BAD_NAME);
	assert_int_equal(name_check_hub("", 0), WIRE_E_BAD_NAME);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_grammar_table),
		cmocka_unit_test(test_remote_addresses),
		cmocka_unit_test(test_lengths_and_nul),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
