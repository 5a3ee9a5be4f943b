/*
 * cmd_pub.c - `ipchub pub TOPIC [JSON]`: publish once, with a refusal
 * check (a PING after the PUBLISH fences any ERROR for it, as in send).
 */
#include "cli.h"

int cmd_pub(struct cli *c, int argc, char **argv)
{
	ipchub_pack pk;
	ipchub_msg *m;
	int rc, status = CLI_EXIT_OK;

	if (argc < 2)
		return cli_usage_error("pub", "missing TOPIC");
	if (argc > 3)
		return cli_usage_error("pub", "too many arguments");
	if (cli_body_from_json(argc > 2 ? argv[2] : NULL, &pk))
		return CLI_EXIT_FAIL;
	if (cli_connect(c)) {
		ipchub_pack_destroy(&pk);
		return CLI_EXIT_FAIL;
	}
	rc = ipchub_publish(c->h, argv[1], pk.buf.data, pk.buf.size);
	ipchub_pack_destroy(&pk);
	if (rc)
		return cli_fail(rc, NULL);
	rc = ipchub_ping(c->h, c->timeout_ms, NULL);
	if (rc)
		return cli_fail(rc, NULL);
	while (ipchub_recv(c->h, 0, &m) == IPCHUB_OK) {
		if (ipchub_msg_error(m) && status == CLI_EXIT_OK)
			status = cli_fail_msg(ipchub_msg_error(m), m);
		ipchub_msg_free(m);
	}
	return status;
}
