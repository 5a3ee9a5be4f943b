/*
 * cmd_send.c - `ipchub send TO [JSON]`: one-way message with a delivery
 * check.
 *
 * Model: a SEND is never acknowledged, only refused. The broker handles a
 * connection's frames in order, so once a PING sent after the SEND has
 * been answered, any ERROR for the SEND has already arrived (the library
 * queued it while waiting for the PONG). The command then looks through
 * what was queued for an error carrying the send's id.
 */
#include <string.h>

#include "cli.h"

int cmd_send(struct cli *c, int argc, char **argv)
{
	const char *pos[2] = {NULL, NULL};
	int npos = 0, rc, status = CLI_EXIT_OK;
	bool only_pos = false;
	ipchub_pack pk;
	ipchub_msg *m;
	uint64_t id = 0;

	for (int i = 1; i < argc; i++) {
		if (!only_pos && strcmp(argv[i], "--") == 0)
			only_pos = true;
		else if (npos < 2)
			pos[npos++] = argv[i];
		else
			return cli_usage_error("send", "too many arguments");
	}
	if (npos < 1)
		return cli_usage_error("send", "missing destination");

	if (cli_body_from_json(pos[1], &pk))
		return CLI_EXIT_FAIL;
	if (cli_connect(c)) {
		ipchub_pack_destroy(&pk);
		return CLI_EXIT_FAIL;
	}
	rc = ipchub_send(c->h, pos[0], pk.buf.data, pk.buf.size, &id);
	ipchub_pack_destroy(&pk);
	if (rc)
		return cli_fail(rc, NULL);
	rc = ipchub_ping(c->h, c->timeout_ms, NULL);
	if (rc)
		return cli_fail(rc, NULL);
	while (ipchub_recv(c->h, 0, &m) == IPCHUB_OK) {
		if (ipchub_msg_error(m) && ipchub_msg_id(m) == id &&
		    status == CLI_EXIT_OK)
			status = cli_fail_msg(ipchub_msg_error(m), m);
		ipchub_msg_free(m);
	}
	return status;
}
