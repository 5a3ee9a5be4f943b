/*
 * cmd_ping.c - `ipchub ping [-c COUNT] [-i MS]`: PING/PONG round trips to
 * the broker, one line each.
 */
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

int cmd_ping(struct cli *c, int argc, char **argv)
{
	int count = 1, interval = 0, rc;

	/* Options come in pairs: -c COUNT, -i MS. */
	for (int i = 1; i < argc; i += 2) {
		int *dst = NULL;

		if (strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--count") == 0)
			dst = &count;
		else if (strcmp(argv[i], "-i") == 0 ||
			 strcmp(argv[i], "--interval") == 0)
			dst = &interval;
		else
			return cli_usage_error("ping", "unexpected argument '%s'",
					       argv[i]);
		if (i + 1 >= argc || !cli_parse_ms(argv[i + 1], dst))
			return cli_usage_error("ping", "invalid value for %s",
					       argv[i]);
	}
	if (count < 1)
		return cli_usage_error("ping", "COUNT must be at least 1");

	if (cli_connect(c))
		return CLI_EXIT_FAIL;
	for (int n = 0; n < count; n++) {
		uint64_t rtt = 0;

		if (n > 0 && interval > 0 && poll(NULL, 0, interval) < 0)
			return CLI_EXIT_OK; /* interrupted between pings */
		if (cli_stop)
			return CLI_EXIT_OK;
		rc = ipchub_ping(c->h, c->timeout_ms, &rtt);
		if (rc == IPCHUB_E_INTERRUPTED)
			return CLI_EXIT_OK;
		if (rc)
			return cli_fail(rc, NULL);
		printf("pong from ipchubd at %s: conn=%llu time=%.3f ms\n",
		       ipchub_socket_path(c->h),
		       (unsigned long long)ipchub_conn_id(c->h),
		       (double)rtt / 1000.0);
		fflush(stdout);
	}
	return CLI_EXIT_OK;
}
