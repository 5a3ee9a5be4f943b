/*
 * cmd_peers.c - `ipchub peers`: ask the broker's ipchub.peers service and
 * print one JSON line per registered name.
 *
 * Model: the reply body is an array of maps; each is converted to JSON
 * and printed with the documented keys first (name, conn, pid, uid), then
 * any others the broker adds.
 */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "json.h"

static int print_entry(json_t *e)
{
	static const char *const order[] = {"name", "conn", "pid", "uid"};
	json_t *out = json_object();
	char *text;

	if (!out)
		return IPCHUB_E_NOMEM;
	for (size_t k = 0; k < sizeof(order) / sizeof(order[0]); k++) {
		json_t *v = json_object_get(e, order[k]);

		if (v && json_object_set(out, order[k], v)) {
			json_decref(out);
			return IPCHUB_E_NOMEM;
		}
	}
	if (json_object_update_missing(out, e)) {
		json_decref(out);
		return IPCHUB_E_NOMEM;
	}
	text = cli_json_dump(out);
	json_decref(out);
	if (!text)
		return IPCHUB_E_NOMEM;
	puts(text);
	free(text);
	return IPCHUB_OK;
}

int cmd_peers(struct cli *c, int argc, char **argv)
{
	ipchub_msg *reply = NULL;
	const void *body;
	json_t *j = NULL, *e;
	size_t len, i;
	char err[256];
	int rc;

	if (argc > 1)
		return cli_usage_error("peers", "unexpected argument '%s'",
				       argv[1]);
	if (cli_connect(c))
		return CLI_EXIT_FAIL;
	rc = ipchub_request(c->h, "ipchub.peers", NULL, 0, c->timeout_ms,
			    &reply);
	if (rc) {
		rc = cli_fail_msg(rc, reply);
		ipchub_msg_free(reply);
		return rc;
	}
	body = ipchub_msg_body(reply, &len);
	rc = cli_json_from_body(body, len, &j, err, sizeof(err));
	ipchub_msg_free(reply);
	if (rc)
		return cli_failf(rc, "peers reply: %s", err);
	if (!json_is_array(j)) {
		json_decref(j);
		return cli_fail(IPCHUB_E_BAD_BODY,
				"peers reply is not an array");
	}
	json_array_foreach(j, i, e) {
		if (!json_is_object(e))
			continue;
		rc = print_entry(e);
		if (rc) {
			json_decref(j);
			return cli_fail(rc, NULL);
		}
	}
	json_decref(j);
	return CLI_EXIT_OK;
}
