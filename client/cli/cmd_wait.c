/*
 * cmd_wait.c - `ipchub wait NAME [--timeout MS]`: exit 0 as soon as NAME
 * has an owner (at once if it has one already), 1 with TIMEOUT after MS
 * (default: wait forever). Built on a watch, so a registration between
 * the check and the wait cannot be missed.
 */
#include <string.h>
#include <time.h>

#include "cli.h"

static long long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int cmd_wait(struct cli *c, int argc, char **argv)
{
	long long deadline;
	const char *name = NULL;
	int wait_ms = -1, rc;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
			if (!cli_parse_ms(argv[++i], &wait_ms))
				return cli_usage_error("wait", "invalid --timeout '%s'",
						       argv[i]);
		} else if (!name) {
			name = argv[i];
		} else {
			return cli_usage_error("wait", "unexpected argument '%s'",
					       argv[i]);
		}
	}
	if (!name)
		return cli_usage_error("wait", "missing NAME");
	if (cli_connect(c))
		return CLI_EXIT_FAIL;
	rc = ipchub_watch(c->h, name, c->timeout_ms, NULL);
	if (rc)
		return cli_failf(rc, "cannot watch '%s': %s", name,
				 ipchub_strerror(rc));
	/* One overall deadline, however many presence events arrive. */
	deadline = wait_ms < 0 ? -1 : mono_ms() + wait_ms;
	for (;;) {
		ipchub_msg *m;
		int ev, left = -1;

		if (deadline >= 0) {
			long long l = deadline - mono_ms();

			left = l > 0 ? (int)l : 0;
		}
		rc = ipchub_recv(c->h, left, &m);
		if (rc == IPCHUB_E_TIMEOUT)
			return cli_failf(rc, "'%s' has no owner after %d ms",
					 name, wait_ms);
		if (rc)
			return cli_fail(rc, NULL);
		ev = ipchub_msg_presence_event(m);
		ipchub_msg_free(m);
		if (ev == IPCHUB_PRESENCE_OWNED || ev == IPCHUB_PRESENCE_REGISTERED)
			return CLI_EXIT_OK;
	}
}
