/*
 * cmd_watch.c - `ipchub watch NAME`: print the name's owner now and every
 * change, one JSON line each: {"kind":"presence","name","event":
 * "owned"|"unowned"|"registered"|"released","owner":conn|null,
 * "reason":"unregister"|"disconnect"|"revoked"|null}.
 */
#include <string.h>

#include "cli.h"
#include "json.h"

json_t *cli_presence_json(const ipchub_msg *m)
{
	static const char *const ev[] = {"?", "owned", "unowned", "registered",
					 "released"};
	static const char *const why[] = {NULL, "unregister", "disconnect",
					  "revoked"};
	int e = ipchub_msg_presence_event(m), r = ipchub_msg_presence_reason(m);
	uint64_t owner = ipchub_msg_presence_owner(m);
	json_t *o = json_object();

	if (!o)
		return NULL;
	json_object_set_new(o, "kind", json_string("presence"));
	json_object_set_new(o, "name", json_string(ipchub_msg_presence_name(m)));
	json_object_set_new(o, "event", json_string(e >= 1 && e <= 4 ? ev[e] : "?"));
	json_object_set_new(o, "owner", owner ? json_integer((json_int_t)owner)
					      : json_null());
	json_object_set_new(o, "reason", r >= 1 && r <= 3 ? json_string(why[r])
							  : json_null());
	return o;
}

int cmd_watch(struct cli *c, int argc, char **argv)
{
	int rc;

	if (argc != 2)
		return cli_usage_error("watch", argc < 2 ? "missing NAME"
							 : "too many arguments");
	if (cli_connect(c))
		return CLI_EXIT_FAIL;
	rc = ipchub_watch(c->h, argv[1], c->timeout_ms, NULL);
	if (rc)
		return cli_failf(rc, "cannot watch '%s': %s", argv[1],
				 ipchub_strerror(rc));
	return cli_recv_loop(c, cli_presence_json);
}
