/*
 * direct.c - baseline (a): two processes talking over a socketpair, no
 * broker in between. This is the floor any broker is measured against:
 * one kernel copy per message each way, no extra hop.
 *
 *   bench_direct thru --size BYTES --count N [--perframe]
 *   bench_direct rtt  --size BYTES --count N [--samples FILE]
 *
 * thru: the child consumes, the parent produces (batched into 64 KiB
 * writes unless --perframe). rtt: the child echoes, the parent times each
 * round trip. One JSON line on stdout (see common.h).
 */
#include "common.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void usage(void)
{
	fprintf(stderr, "usage: bench_direct thru|rtt --size BYTES --count N "
			"[--perframe] [--samples FILE]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		usage();
	const char *mode = argv[1];
	size_t size = (size_t)bench_opt_u64(argc, argv, "--size", 64);
	uint64_t count = bench_opt_u64(argc, argv, "--count", 100000);
	if (size < 2 || size > BENCH_MAX_BODY || count < 2)
		usage();

	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		bench_die("socketpair: %s", strerror(errno));

	int thru = strcmp(mode, "thru") == 0;
	if (!thru && strcmp(mode, "rtt") != 0)
		usage();

	pid_t pid = bench_fork();
	if (pid == 0) {
		close(sv[0]);
		if (thru)
			bench_raw_consume(sv[1], "direct", "thru", size, count, 1);
		else
			bench_raw_rtt_server(sv[1], size);
		_exit(0);
	}
	close(sv[1]);
	if (thru) {
		bench_raw_produce(sv[0], size, count,
				  !bench_flag(argc, argv, "--perframe"));
	} else {
		bench_raw_rtt_client(sv[0], "direct", size, count,
				     bench_opt(argc, argv, "--samples", NULL));
	}
	close(sv[0]);
	bench_wait_ok(pid, thru ? "consumer" : "echo server");
	return 0;
}
