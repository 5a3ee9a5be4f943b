/*
 * test_bconf.c - ipchub-bridge's settings file and command-line merge
 * (bridge/bconf.h): sections and keys, repeatable lists, the errors a
 * bad file gets (with its line), and that a bad file changes nothing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bconf.h"

static char path[64];

static void write_file(const char *text)
{
	FILE *f;

	snprintf(path, sizeof(path), "/tmp/test_bconf_%d.ini", (int)getpid());
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_full_file(void **state)
{
	struct bconf c = {0};
	char err[512];

	(void)state;
	write_file("; a bridge\n"
		   "[bridge]\n"
		   "hub = a\n"
		   "nats = nats://127.0.0.1:4222,nats://127.0.0.1:4223\n"
		   "user = bridge\n"
		   "password-file = /etc/ipchub/pw\n"
		   "nats-batch = yes\n"
		   "[topics]\n"
		   "export = weather.>\n"
		   "export = alarm.*\n"
		   "import = alarm.*\n"
		   "[names]\n"
		   "export = svc.db\n");
	assert_int_equal(bconf_load(&c, path, err, sizeof(err)), 0);
	assert_string_equal(c.v[BCONF_HUB], "a");
	assert_string_equal(c.v[BCONF_NATS], "nats://127.0.0.1:4222,nats://127.0.0.1:4223");
	assert_string_equal(c.v[BCONF_USER], "bridge");
	assert_string_equal(c.v[BCONF_PWFILE], "/etc/ipchub/pw");
	assert_null(c.v[BCONF_CREDS]);
	assert_true(c.batch);
	assert_int_equal(c.n[BCONF_EXPORTS], 2);
	assert_string_equal(c.list[BCONF_EXPORTS][1], "alarm.*");
	assert_int_equal(c.n[BCONF_IMPORTS], 1);
	assert_int_equal(c.n[BCONF_NAMES], 1);
	assert_string_equal(c.list[BCONF_NAMES][0], "svc.db");
	/* The command line comes after: scalars replace, lists grow. */
	assert_int_equal(bconf_set(&c, BCONF_HUB, "b", err, sizeof(err)), 0);
	assert_int_equal(bconf_add(&c, BCONF_NAMES, "svc.two", err, sizeof(err)), 0);
	assert_string_equal(c.v[BCONF_HUB], "b");
	assert_int_equal(c.n[BCONF_NAMES], 2);
	bconf_free(&c);
	unlink(path);
}

static void expect_error(const char *text, const char *want)
{
	struct bconf c = {0};
	char err[512] = "";

	assert_int_equal(bconf_add(&c, BCONF_NAMES, "kept", err, sizeof(err)), 0);
	write_file(text);
	assert_int_equal(bconf_load(&c, path, err, sizeof(err)), -1);
	if (!strstr(err, want))
		fail_msg("error \"%s\" lacks \"%s\"", err, want);
	/* Nothing of the bad file stays. */
	assert_int_equal(c.n[BCONF_NAMES], 1);
	assert_null(c.v[BCONF_HUB]);
	bconf_free(&c);
	unlink(path);
}

static void test_errors(void **state)
{
	(void)state;
	expect_error("[bridge]\nhub = a\nhub = b\n", ":3: [bridge] hub set twice");
	expect_error("[bridge]\nhub = a\ncolour = red\n", ":3: unknown key \"colour\" in [bridge]");
	expect_error("[nope]\nx = 1\n", "unknown section [nope]");
	expect_error("hub = a\n", "unknown section []");
	expect_error("[names]\nimport = a\n", "unknown key \"import\" in [names]");
	expect_error("[bridge]\nhub =\n", "hub is empty");
	expect_error("[bridge]\nnats-batch = maybe\n", "nats-batch is yes or no");
	expect_error("[bridge]\nthis is not ini\n", ":2: syntax error");
	{
		char big[BCONF_MAX_LIST * 16 + 64], *p = big;

		p += sprintf(p, "[names]\n");
		for (int i = 0; i <= BCONF_MAX_LIST; i++)
			p += sprintf(p, "export = n%d\n", i);
		expect_error(big, "more than");
	}
}

static void test_missing_file(void **state)
{
	struct bconf c = {0};
	char err[512];

	(void)state;
	assert_int_equal(bconf_load(&c, "/nonexistent/bridge.ini", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "cannot open /nonexistent/bridge.ini"));
	bconf_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_file),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_missing_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
