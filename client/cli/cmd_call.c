/*
 * cmd_call.c - `ipchub call TO [JSON] [--timeout MS]`: one request, the
 * reply body printed as one line of JSON.
 *
 * Model: the reply message is owned here until printed; an error answer
 * (error reply from the responder, or the broker's ERROR such as
 * NO_SUCH_PEER or TIMEOUT) is reported with its own text and exit 1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "json.h"

int cmd_call(struct cli *c, int argc, char **argv)
{
	const char *pos[2] = {NULL, NULL};
	int npos = 0, rc, timeout = c->timeout_ms;
	bool only_pos = false;
	ipchub_msg *reply = NULL;
	ipchub_pack pk;
	json_t *j = NULL;
	const void *body;
	size_t len;
	char err[256], *text;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!only_pos && strcmp(a, "--") == 0) {
			only_pos = true;
		} else if (!only_pos && (strcmp(a, "--timeout") == 0 ||
					 strcmp(a, "-t") == 0)) {
			if (i + 1 >= argc || !cli_parse_ms(argv[i + 1], &timeout) ||
			    timeout == 0)
				return cli_usage_error("call", "invalid --timeout");
			i++;
		} else if (!only_pos && strncmp(a, "--timeout=", 10) == 0) {
			if (!cli_parse_ms(a + 10, &timeout) || timeout == 0)
				return cli_usage_error("call", "invalid --timeout");
		} else if (npos < 2) {
			pos[npos++] = a;
		} else {
			return cli_usage_error("call", "too many arguments");
		}
	}
	if (npos < 1)
		return cli_usage_error("call", "missing destination");

	if (cli_body_from_json(pos[1], &pk))
		return CLI_EXIT_FAIL;
	if (cli_connect(c)) {
		ipchub_pack_destroy(&pk);
		return CLI_EXIT_FAIL;
	}
	rc = ipchub_request(c->h, pos[0], pk.buf.data, pk.buf.size, timeout,
			    &reply);
	ipchub_pack_destroy(&pk);
	if (rc) {
		rc = cli_fail_msg(rc, reply);
		ipchub_msg_free(reply);
		return rc;
	}
	body = ipchub_msg_body(reply, &len);
	rc = cli_json_from_body(body, len, &j, err, sizeof(err));
	ipchub_msg_free(reply);
	if (rc)
		return cli_failf(rc, "reply: %s", err);
	text = cli_json_dump(j);
	json_decref(j);
	if (!text)
		return cli_fail(IPCHUB_E_NOMEM, NULL);
	puts(text);
	free(text);
	return CLI_EXIT_OK;
}
