/*
 * test_memfd.c - unit tests of memfd.c: creating, sealing, checking and
 * mapping memfd bodies (PROTOCOL.md 6.10). The seal check accepts exactly
 * a memfd that carries all four seals and has the declared size; every
 * other descriptor gets its typed code and is left open and unchanged.
 * The memfd threshold of the client library is tested through the real
 * broker (tests/integ/test_memfd_lane.c), where it is observable.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "limits.h"
#include "memfd.h"
#include "wire.h"

static int filled(size_t len)
{
	int fd = -1;

	assert_int_equal(memfd_body_new(len, &fd), 0);
	assert_true(fd >= 0);
	assert_int_equal(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	assert_int_equal(pwrite(fd, "\xc4\x03" "abc", 5, 0), 5);
	return fd;
}

static void test_accept(void **state)
{
	int fd = filled(8192);
	const uint8_t *p;

	(void)state;
	assert_int_equal(memfd_body_seal(fd), 0);
	assert_int_equal(fcntl(fd, F_GET_SEALS), MEMFD_SEALS);
	assert_int_equal(memfd_body_check(fd, 8192), WIRE_E_OK);
	p = memfd_body_map(fd, 8192);
	assert_non_null(p);
	assert_memory_equal(p, "\xc4\x03" "abc", 5);
	assert_int_equal(p[8191], 0); /* ftruncate zero-fills */
	munmap((void *)p, 8192);
	/* Sealed: the content cannot change any more. */
	assert_int_equal(pwrite(fd, "x", 1, 0), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(ftruncate(fd, 4096), -1);
	close(fd);
}

static void test_reject_seals(void **state)
{
	static const int partial[] = {
		0,
		F_SEAL_WRITE,
		F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW, /* no F_SEAL_SEAL */
		F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL,  /* writable */
	};
	int p[2];

	(void)state;
	for (size_t i = 0; i < sizeof(partial) / sizeof(partial[0]); i++) {
		int fd = filled(4096);

		if (partial[i])
			assert_int_equal(fcntl(fd, F_ADD_SEALS, partial[i]), 0);
		assert_int_equal(memfd_body_check(fd, 4096),
				 WIRE_E_MEMFD_UNSEALED);
		assert_int_equal(fcntl(fd, F_GET_SEALS), partial[i]);
		close(fd);
	}
	/* Not a memfd: a pipe, and a memfd created without sealing. */
	assert_int_equal(pipe(p), 0);
	assert_int_equal(memfd_body_check(p[0], 1), WIRE_E_MEMFD_UNSEALED);
	close(p[0]);
	close(p[1]);
	int plain = memfd_create("plain", MFD_CLOEXEC);
	assert_true(plain >= 0);
	assert_int_equal(memfd_body_seal(plain), -EPERM);
	assert_int_equal(memfd_body_check(plain, 0), WIRE_E_MEMFD_UNSEALED);
	close(plain);
	/* A closed descriptor. */
	assert_int_equal(memfd_body_check(p[0], 1), WIRE_E_MEMFD_UNSEALED);
}

static void test_reject_size(void **state)
{
	int fd = filled(10000);

	(void)state;
	assert_int_equal(memfd_body_seal(fd), 0);
	assert_int_equal(memfd_body_check(fd, 9999), WIRE_E_MEMFD_SIZE);
	assert_int_equal(memfd_body_check(fd, 10001), WIRE_E_MEMFD_SIZE);
	assert_int_equal(memfd_body_check(fd, 0), WIRE_E_MEMFD_SIZE);
	assert_int_equal(memfd_body_check(fd, IPCHUB_MAX_MEMFD_BODY),
			 WIRE_E_MEMFD_SIZE);
	assert_int_equal(memfd_body_check(fd, 10000), WIRE_E_OK);
	close(fd);
}

static void test_seal_busy_while_mapped(void **state)
{
	int fd = filled(4096);
	void *w = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	(void)state;
	assert_true(w != MAP_FAILED);
	memcpy(w, "\xc0", 1);
	/* A writable shared mapping blocks F_SEAL_WRITE: libipchub unmaps
	 * a body_alloc() buffer before sealing it. */
	assert_int_equal(memfd_body_seal(fd), -EBUSY);
	assert_int_equal(memfd_body_check(fd, 4096), WIRE_E_MEMFD_UNSEALED);
	munmap(w, 4096);
	assert_int_equal(memfd_body_seal(fd), 0);
	assert_int_equal(memfd_body_check(fd, 4096), WIRE_E_OK);
	close(fd);
}

static void test_limits(void **state)
{
	(void)state;
	/* The default threshold is a valid setting and far below a frame. */
	assert_true(IPCHUB_MEMFD_MIN_DEFAULT >= IPCHUB_MEMFD_MIN_MIN);
	assert_true(IPCHUB_MEMFD_MIN_DEFAULT < IPCHUB_MAX_FRAME_DEFAULT);
	assert_true(IPCHUB_MAX_MEMFD_BODY >= IPCHUB_MAX_FRAME_MAX);
	assert_true(IPCHUB_MAX_MEMFD_BODY <= IPCHUB_QUEUE_HWM_MAX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accept),
		cmocka_unit_test(test_reject_seals),
		cmocka_unit_test(test_reject_size),
		cmocka_unit_test(test_seal_busy_while_mapped),
		cmocka_unit_test(test_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
