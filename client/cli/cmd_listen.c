/*
 * cmd_listen.c - `ipchub listen NAME`: register NAME and print every
 * message received as one line of JSON.
 *
 * Model: a loop over ipchub_recv_lent() with a bounded wait, so a SIGINT
 * or SIGTERM that lands between two waits is still seen within a second.
 * Each message is lent by the handle until the next receive: it is
 * turned into JSON before then, never copied or freed here.
 * Bodies without a JSON form (e.g. invalid UTF-8) are printed as
 * "body": null plus "body_error": "<why>", so no message goes unreported.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cli.h"
#include "json.h"

/* Longest single wait, so that cli_stop is checked at least this often. */
#define LISTEN_POLL_MS 1000

static const char *kind_name(int kind)
{
	switch (kind) {
	case IPCHUB_KIND_SEND:
		return "send";
	case IPCHUB_KIND_REQUEST:
		return "request";
	case IPCHUB_KIND_REPLY:
		return "reply";
	default:
		return "error";
	}
}

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

/* "fds": [{"fd": n, "target": what /proc/self/fd/n links to}, ...] when
 * descriptors came with m (they are closed with the message). */
static int add_fds(json_t *o, const ipchub_msg *m)
{
	const int *fds;
	size_t n = ipchub_msg_fds(m, &fds);
	json_t *a;

	if (!n)
		return 0;
	a = json_array();
	if (!a)
		return -1;
	for (size_t i = 0; i < n; i++) {
		char path[64], target[4096];
		ssize_t len;
		json_t *e = json_object();

		snprintf(path, sizeof(path), "/proc/self/fd/%d", fds[i]);
		len = readlink(path, target, sizeof(target) - 1);
		target[len < 0 ? 0 : len] = '\0';
		if (!e || json_object_set_new(e, "fd", json_integer(fds[i])) ||
		    json_object_set_new(e, "target", json_string(target)) ||
		    json_array_append_new(a, e)) {
			json_decref(e);
			json_decref(a);
			return -1;
		}
	}
	return json_object_set_new(o, "fds", a);
}

/* Build the JSON line for m; NULL when out of memory. */
static json_t *describe(const ipchub_msg *m)
{
	json_t *o = json_object(), *body = NULL;
	const void *b;
	size_t len;
	char err[256];
	int code = ipchub_msg_error(m);
	int bad = 0;

	if (!o)
		return NULL;
	bad |= json_object_set_new(o, "kind",
				   json_string(kind_name(ipchub_msg_kind(m))));
	bad |= json_object_set_new(o, "from", str_or_null(ipchub_msg_from(m)));
	bad |= json_object_set_new(o, "from_id",
				   json_integer((json_int_t)ipchub_msg_from_id(m)));
	bad |= json_object_set_new(o, "to", str_or_null(ipchub_msg_to(m)));
	bad |= json_object_set_new(o, "id",
				   json_integer((json_int_t)ipchub_msg_id(m)));
	if (ipchub_msg_kind(m) != 10) {
		b = ipchub_msg_body(m, &len);
		if (cli_json_from_body(b, len, &body, err, sizeof(err))) {
			bad |= json_object_set_new(o, "body", json_null());
			bad |= json_object_set_new(o, "body_error",
						   json_string(err));
		} else {
			bad |= json_object_set_new(o, "body", body);
		}
	}
	bad |= add_fds(o, m);
	uint32_t cuid;
	if (ipchub_msg_claims(m, &cuid, NULL, NULL) && cuid != UINT32_MAX)
		bad |= json_object_set_new(o, "claim_uid",
					   json_integer((json_int_t)cuid));
	if (code) {
		bad |= json_object_set_new(o, "code",
					   json_string(ipchub_code_name(code)));
		bad |= json_object_set_new(o, "message",
					   str_or_null(ipchub_msg_error_text(m)));
	}
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

int cmd_listen(struct cli *c, int argc, char **argv)
{
	int rc;

	if (argc < 2)
		return cli_usage_error("listen", "missing NAME");
	if (argc > 2)
		return cli_usage_error("listen", "unexpected argument '%s'",
				       argv[2]);
	if (cli_connect(c))
		return CLI_EXIT_FAIL;
	rc = ipchub_register(c->h, argv[1], c->timeout_ms);
	if (rc)
		return cli_failf(rc, "cannot register '%s': %s", argv[1],
				 ipchub_strerror(rc));

	while (!cli_stop) {
		const ipchub_msg *m;
		json_t *j;
		char *text;

		rc = ipchub_recv_lent(c->h, LISTEN_POLL_MS, &m);
		if (rc == IPCHUB_E_TIMEOUT)
			continue;
		if (rc == IPCHUB_E_INTERRUPTED)
			break;
		if (rc == IPCHUB_E_CLOSED || rc == IPCHUB_E_SHUTTING_DOWN)
			return CLI_EXIT_OK; /* the broker said goodbye */
		if (rc)
			return cli_fail(rc, NULL);
		j = describe(m);
		text = j ? cli_json_dump(j) : NULL;
		json_decref(j);
		if (!text)
			return cli_fail(IPCHUB_E_NOMEM, NULL);
		puts(text);
		free(text);
		if (fflush(stdout) != 0)
			return CLI_EXIT_FAIL; /* reader went away */
	}
	return CLI_EXIT_OK;
}
