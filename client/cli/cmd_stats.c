/*
 * cmd_stats.c - `ipchub stats [--prometheus]`: ask ipchub.stats and print
 * the reply as one JSON object, or in the OpenMetrics text format.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "json.h"

static json_int_t geti(json_t *o, const char *k)
{
	return json_integer_value(json_object_get(o, k));
}

static void metric(const char *name, const char *type, const char *help)
{
	printf("# TYPE %s %s\n# HELP %s %s\n", name, type, name, help);
}

static void prometheus(json_t *s)
{
	static const struct { const char *key, *name, *type, *help; } tot[] = {
		{"connections", "ipchub_connections", "gauge", "Open connections."},
		{"connections_total", "ipchub_connections_accepted", "counter", "Connections accepted."},
		{"names", "ipchub_names", "gauge", "Registered names."},
		{"subscriptions", "ipchub_subscriptions", "gauge", "Live subscriptions."},
		{"messages_routed", "ipchub_messages_routed", "counter", "Messages delivered between clients."},
		{"bytes_routed", "ipchub_routed_bytes", "counter", "Bytes of messages delivered between clients."},
		{"batches_routed", "ipchub_batches_routed", "counter", "Batched SEND frames among the messages routed."},
		{"bytes_copied", "ipchub_copied_bytes", "counter", "Bytes of large bodies copied instead of moved by the broker."},
		{"drops", "ipchub_drops", "counter", "Publications and monitor copies dropped."},
	};
	static const struct { const char *key, *name, *type, *help; } per[] = {
		{"queued_bytes", "ipchub_conn_queued_bytes", "gauge", "Bytes queued to the connection."},
		{"messages_in", "ipchub_conn_messages_in", "counter", "Frames read from the connection."},
		{"messages_out", "ipchub_conn_messages_out", "counter", "Frames queued to the connection."},
		{"bytes_in", "ipchub_conn_bytes_in", "counter", "Bytes read from the connection."},
		{"bytes_out", "ipchub_conn_bytes_out", "counter", "Bytes written to the connection."},
		{"drops", "ipchub_conn_drops", "counter", "Publications and copies dropped for the connection."},
	};
	json_t *conns = json_object_get(s, "conns"), *errs = json_object_get(s, "errors"), *v;
	const char *k;
	size_t i;

	metric("ipchub_uptime_seconds", "gauge", "Seconds since the broker started.");
	printf("ipchub_uptime_seconds %.3f\n", (double)geti(s, "uptime_ms") / 1000.0);
	for (i = 0; i < sizeof(tot) / sizeof(tot[0]); i++) {
		metric(tot[i].name, tot[i].type, tot[i].help);
		printf("%s%s %lld\n", tot[i].name,
		       strcmp(tot[i].type, "counter") == 0 ? "_total" : "",
		       (long long)geti(s, tot[i].key));
	}
	metric("ipchub_bytes", "counter", "Bytes read from and written to clients.");
	printf("ipchub_bytes_total{direction=\"in\"} %lld\n", (long long)geti(s, "bytes_in"));
	printf("ipchub_bytes_total{direction=\"out\"} %lld\n", (long long)geti(s, "bytes_out"));
	metric("ipchub_errors", "counter", "ERROR frames sent, by code.");
	json_object_foreach(errs, k, v)
		printf("ipchub_errors_total{code=\"%s\"} %lld\n", k,
		       (long long)json_integer_value(v));
	for (i = 0; i < sizeof(per) / sizeof(per[0]); i++) {
		size_t j;
		json_t *c;

		metric(per[i].name, per[i].type, per[i].help);
		json_array_foreach(conns, j, c) {
			json_t *names = json_object_get(c, "names");
			const char *n = json_array_size(names)
						? json_string_value(json_array_get(names, 0))
						: "";

			printf("%s%s{conn=\"%lld\",name=\"%s\"} %lld\n", per[i].name,
			       strcmp(per[i].type, "counter") == 0 ? "_total" : "",
			       (long long)geti(c, "id"), n,
			       (long long)geti(c, per[i].key));
		}
	}
	puts("# EOF");
}

int cmd_stats(struct cli *c, int argc, char **argv)
{
	bool prom = false;
	ipchub_msg *m = NULL;
	json_t *j = NULL;
	const void *b;
	size_t len;
	char err[256];
	int rc;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--prometheus") == 0)
			prom = true;
		else
			return cli_usage_error("stats", "unexpected argument '%s'",
					       argv[i]);
	}
	if (cli_connect(c))
		return CLI_EXIT_FAIL;
	rc = ipchub_request(c->h, "ipchub.stats", NULL, 0, c->timeout_ms, &m);
	if (rc) {
		rc = cli_fail_msg(rc, m);
		ipchub_msg_free(m);
		return rc;
	}
	b = ipchub_msg_body(m, &len);
	rc = cli_json_from_body(b, len, &j, err, sizeof(err));
	ipchub_msg_free(m);
	if (rc)
		return cli_fail(rc, err);
	if (prom) {
		prometheus(j);
		json_decref(j);
		return CLI_EXIT_OK;
	}
	return cli_print_json(j);
}
