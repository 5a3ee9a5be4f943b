/*
 * cmd_peers.c - `ipchub peers`: ask the broker's ipchub.peers service and
 * print one JSON line per registered name.
 *
 * Model: the reply body is an array of maps; each is converted to JSON
 * and printed with the documented keys first (name, conn, pid, uid), then
 * any others the broker adds. The identity keys "auth" and "key" are
 * shown only with -l, the key in its text form "ed25519:HEX".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cli.h"
#include "json.h"
#include "transcript.h"

/* {"$bin": base64} of a 32-byte key -> "ed25519:HEX"; NULL otherwise. */
static json_t *key_text(json_t *v)
{
	const char *b64 = json_string_value(json_object_get(v, "$bin"));
	uint8_t pk[AUTH_PK_LEN];
	char text[PKTEXT_LEN + 1];
	size_t n = 0;

	if (!b64 || sodium_base642bin(pk, sizeof(pk), b64, strlen(b64), NULL,
				      &n, NULL,
				      sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    n != AUTH_PK_LEN)
		return NULL;
	pktext_format(pk, text, sizeof(text));
	return json_string(text);
}

static int print_entry(json_t *e, bool longfmt)
{
	static const char *const order[] = {"name", "conn", "pid", "uid"};
	json_t *out = json_object();
	json_t *key = json_object_get(e, "key");
	char *text;

	if (!out)
		return IPCHUB_E_NOMEM;
	if (key) {
		json_t *kt = key_text(key);

		if (kt)
			json_object_set_new(e, "key", kt);
	}
	if (!longfmt) {
		json_object_del(e, "auth");
		json_object_del(e, "key");
	} else if (!json_object_get(e, "auth")) {
		json_object_set_new(e, "auth", json_false());
	}
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

	bool longfmt = false;

	for (int a = 1; a < argc; a++) {
		if (strcmp(argv[a], "-l") == 0 || strcmp(argv[a], "--long") == 0)
			longfmt = true;
		else
			return cli_usage_error("peers", "unexpected argument '%s'",
					       argv[a]);
	}
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
		rc = print_entry(e, longfmt);
		if (rc) {
			json_decref(j);
			return cli_fail(rc, NULL);
		}
	}
	json_decref(j);
	return CLI_EXIT_OK;
}
