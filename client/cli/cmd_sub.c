/*
 * cmd_sub.c - `ipchub sub PATTERN [--policy P]`: subscribe and print one
 * JSON line per publication ({"kind":"publish","topic","from","from_id",
 * "sub","id","body"}) or gap ({"kind":"gap","sub","count"}). Ends with 0
 * on SIGINT/SIGTERM or when the broker closes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "json.h"

#define SUB_POLL_MS 1000

static const char *const policies[] = {"drop-oldest", "drop-newest",
				       "disconnect", "block"};

int cli_print_json(json_t *j)
{
	char *text = j ? cli_json_dump(j) : NULL;

	json_decref(j);
	if (!text)
		return cli_fail(IPCHUB_E_NOMEM, NULL);
	puts(text);
	free(text);
	return fflush(stdout) != 0 ? CLI_EXIT_FAIL : 0;
}

int cli_recv_loop(struct cli *c, json_t *(*describe)(const ipchub_msg *m))
{
	while (!cli_stop) {
		const ipchub_msg *m; /* lent until the next receive */
		int rc = ipchub_recv_lent(c->h, SUB_POLL_MS, &m);

		if (rc == IPCHUB_E_TIMEOUT)
			continue;
		if (rc == IPCHUB_E_INTERRUPTED)
			break;
		if (rc == IPCHUB_E_CLOSED || rc == IPCHUB_E_SHUTTING_DOWN)
			return CLI_EXIT_OK;
		if (rc)
			return cli_fail(rc, NULL);
		if (ipchub_msg_error(m))
			return cli_fail_msg(ipchub_msg_error(m), m);
		rc = cli_print_json(describe(m));
		if (rc)
			return rc;
	}
	return CLI_EXIT_OK;
}

static json_t *describe(const ipchub_msg *m)
{
	json_t *o = json_object(), *body = NULL;
	char err[256];
	const void *b;
	size_t len;

	if (!o)
		return NULL;
	if (ipchub_msg_kind(m) == IPCHUB_KIND_GAP) {
		json_object_set_new(o, "kind", json_string("gap"));
		json_object_set_new(o, "sub", json_integer((json_int_t)ipchub_msg_sub(m)));
		json_object_set_new(o, "count",
				    json_integer((json_int_t)ipchub_msg_gap_count(m)));
		return o;
	}
	json_object_set_new(o, "kind", json_string("publish"));
	json_object_set_new(o, "topic", json_string(ipchub_msg_topic(m)));
	json_object_set_new(o, "from", ipchub_msg_from(m) ? json_string(ipchub_msg_from(m))
							  : json_null());
	json_object_set_new(o, "from_id", json_integer((json_int_t)ipchub_msg_from_id(m)));
	json_object_set_new(o, "sub", json_integer((json_int_t)ipchub_msg_sub(m)));
	json_object_set_new(o, "id", json_integer((json_int_t)ipchub_msg_id(m)));
	b = ipchub_msg_body(m, &len);
	if (cli_json_from_body(b, len, &body, err, sizeof(err))) {
		json_object_set_new(o, "body", json_null());
		json_object_set_new(o, "body_error", json_string(err));
	} else {
		json_object_set_new(o, "body", body);
	}
	return o;
}

int cmd_sub(struct cli *c, int argc, char **argv)
{
	const char *pattern = NULL;
	int policy = IPCHUB_POLICY_DROP_OLDEST, rc;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--policy") == 0 && i + 1 < argc) {
			const char *p = argv[++i];

			policy = -1;
			for (int k = 0; k < 4; k++)
				if (strcmp(p, policies[k]) == 0)
					policy = k;
			if (policy < 0)
				return cli_usage_error("sub", "unknown policy '%s'", p);
		} else if (!pattern) {
			pattern = argv[i];
		} else {
			return cli_usage_error("sub", "unexpected argument '%s'",
					       argv[i]);
		}
	}
	if (!pattern)
		return cli_usage_error("sub", "missing PATTERN");
	if (cli_connect(c))
		return CLI_EXIT_FAIL;
	rc = ipchub_subscribe(c->h, pattern, policy, c->timeout_ms, NULL);
	if (rc)
		return cli_failf(rc, "cannot subscribe to '%s': %s", pattern,
				 ipchub_strerror(rc));
	return cli_recv_loop(c, describe);
}
