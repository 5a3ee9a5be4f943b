/*
 * test_addr.c - socket path resolution: precedence of the explicit path,
 * $IPCHUB_SOCKET, $XDG_RUNTIME_DIR and the /tmp fallback; abstract names;
 * length limits of sockaddr_un; outputs untouched on failure.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"

#define SUN_MAX sizeof(((struct sockaddr_un *)0)->sun_path)

static int clear_env(void **state)
{
	unsetenv("IPCHUB_SOCKET");
	unsetenv("XDG_RUNTIME_DIR");
	return 0;
}

static void test_precedence(void **state)
{
	char out[256], want[64];

	snprintf(want, sizeof(want), "/tmp/ipchub-%lu/ipchub.sock",
		 (unsigned long)getuid());
	assert_int_equal(addr_resolve(NULL, out, sizeof(out)), 0);
	assert_string_equal(out, want);
	assert_int_equal(addr_resolve("", out, sizeof(out)), 0);
	assert_string_equal(out, want);

	setenv("XDG_RUNTIME_DIR", "/run/user/1000", 1);
	assert_int_equal(addr_resolve(NULL, out, sizeof(out)), 0);
	assert_string_equal(out, "/run/user/1000/ipchub.sock");
	setenv("XDG_RUNTIME_DIR", "/run/user/1000/", 1);
	assert_int_equal(addr_resolve(NULL, out, sizeof(out)), 0);
	assert_string_equal(out, "/run/user/1000/ipchub.sock");

	setenv("IPCHUB_SOCKET", "/srv/hub.sock", 1);
	assert_int_equal(addr_resolve(NULL, out, sizeof(out)), 0);
	assert_string_equal(out, "/srv/hub.sock");

	assert_int_equal(addr_resolve("/explicit.sock", out, sizeof(out)), 0);
	assert_string_equal(out, "/explicit.sock");

	/* Empty variables count as unset. */
	setenv("IPCHUB_SOCKET", "", 1);
	assert_int_equal(addr_resolve(NULL, out, sizeof(out)), 0);
	assert_string_equal(out, "/run/user/1000/ipchub.sock");
	setenv("XDG_RUNTIME_DIR", "", 1);
	assert_int_equal(addr_resolve(NULL, out, sizeof(out)), 0);
	assert_string_equal(out, want);

	setenv("IPCHUB_SOCKET", "@hub", 1);
	assert_int_equal(addr_resolve(NULL, out, sizeof(out)), 0);
	assert_string_equal(out, "@hub");
}

static void test_length_limits(void **state)
{
	char path[SUN_MAX + 8], out[512], keep[8] = "keep";

	/* Filesystem path: at most SUN_MAX - 1 bytes (room for the NUL). */
	memset(path, 'p', sizeof(path));
	path[0] = '/';
	path[SUN_MAX - 1] = '\0';
	assert_int_equal(addr_resolve(path, out, sizeof(out)), 0);
	assert_int_equal(strlen(out), SUN_MAX - 1);
	memset(path, 'p', sizeof(path));
	path[0] = '/';
	path[SUN_MAX] = '\0';
	strcpy(out, "keep");
	assert_int_equal(addr_resolve(path, out, sizeof(out)), -ENAMETOOLONG);
	assert_string_equal(out, "keep");

	/* Abstract: "@" + up to SUN_MAX - 1 bytes (no NUL is stored). */
	memset(path, 'a', sizeof(path));
	path[0] = '@';
	path[SUN_MAX] = '\0';
	assert_int_equal(addr_resolve(path, out, sizeof(out)), 0);
	path[SUN_MAX] = 'a';
	path[SUN_MAX + 1] = '\0';
	assert_int_equal(addr_resolve(path, out, sizeof(out)), -ENAMETOOLONG);

	/* Caller's buffer too small: untouched. */
	assert_int_equal(addr_resolve("/abc", keep, 4), -ENAMETOOLONG);
	assert_string_equal(keep, "keep");
	assert_int_equal(addr_resolve("/abc", keep, 5), 0);
	assert_string_equal(keep, "/abc");
	assert_int_equal(addr_resolve("/abc", out, 0), -ENAMETOOLONG);

	/* A long $XDG_RUNTIME_DIR fails rather than truncating. */
	memset(path, 'x', sizeof(path));
	path[0] = '/';
	path[SUN_MAX - 5] = '\0';
	setenv("XDG_RUNTIME_DIR", path, 1);
	assert_int_equal(addr_resolve(NULL, out, sizeof(out)), -ENAMETOOLONG);
}

static void test_sockaddr(void **state)
{
	struct sockaddr_un sa;
	socklen_t len = 0;
	char path[SUN_MAX + 8];

	assert_int_equal(addr_sockaddr("/tmp/x.sock", &sa, &len), 0);
	assert_int_equal(sa.sun_family, AF_UNIX);
	assert_string_equal(sa.sun_path, "/tmp/x.sock");
	assert_int_equal(len, offsetof(struct sockaddr_un, sun_path) + 12);

	assert_int_equal(addr_sockaddr("@hub", &sa, &len), 0);
	assert_int_equal(sa.sun_path[0], '\0');
	assert_memory_equal(sa.sun_path + 1, "hub", 3);
	assert_int_equal(len, offsetof(struct sockaddr_un, sun_path) + 4);
	assert_true(addr_is_abstract("@hub"));
	assert_false(addr_is_abstract("/hub"));
	assert_false(addr_is_abstract(NULL));

	len = 77;
	assert_int_equal(addr_sockaddr("", &sa, &len), -EINVAL);
	assert_int_equal(addr_sockaddr(NULL, &sa, &len), -EINVAL);
	assert_int_equal(addr_sockaddr("@", &sa, &len), -EINVAL);
	assert_int_equal(len, 77);

	memset(path, 'a', sizeof(path));
	path[0] = '@';
	path[SUN_MAX] = '\0';
	assert_int_equal(addr_sockaddr(path, &sa, &len), 0);
	assert_int_equal(len, sizeof(struct sockaddr_un));
	path[SUN_MAX] = 'a';
	path[SUN_MAX + 1] = '\0';
	assert_int_equal(addr_sockaddr(path, &sa, &len), -ENAMETOOLONG);
	memset(path, 'p', sizeof(path));
	path[SUN_MAX - 1] = '\0';
	assert_int_equal(addr_sockaddr(path, &sa, &len), 0);
	path[SUN_MAX - 1] = 'p';
	path[SUN_MAX] = '\0';
	len = 77;
	assert_int_equal(addr_sockaddr(path, &sa, &len), -ENAMETOOLONG);
	assert_int_equal(len, 77);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_precedence, clear_env),
		cmocka_unit_test_setup(test_length_limits, clear_env),
		cmocka_unit_test_setup(test_sockaddr, clear_env),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
