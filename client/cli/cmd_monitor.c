/*
 * cmd_monitor.c - `ipchub monitor [--filter F]`: print one JSON line per
 * tapped frame: {"dir":"in"|"out","conn","kind", the header's fields by
 * name, "body"} (a frame cut to its header adds "length" instead of the
 * body); lost copies print {"kind":"gap","count"}. A batched SEND (or PUBLISH)
 * (PROTOCOL.md 6.3.1) is shown as the frame it is: its header (flags
 * with BATCH), "batch": the number of messages, and the body as the
 * array of their bodies (the first has the frame's id, the next id + 1..).
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "frame.h"
#include "json.h"
#include "mpr.h"

static void set_u(json_t *o, const char *k, uint64_t v)
{
	json_object_set_new(o, k, json_integer((json_int_t)v));
}

static json_t *describe(const ipchub_msg *m)
{
	const void *fr;
	size_t len;
	uint64_t conn, full;
	int dir;
	struct frame_hdr h;
	struct iovec iov;
	struct mpr r;
	bool hb = false;
	json_t *o = json_object(), *body = NULL;
	char err[256];

	if (!o)
		return NULL;
	if (ipchub_msg_kind(m) == IPCHUB_KIND_GAP) {
		json_object_set_new(o, "kind", json_string("gap"));
		set_u(o, "count", ipchub_msg_gap_count(m));
		return o;
	}
	dir = ipchub_msg_monitor_frame(m, &fr, &len, &conn, &full);
	json_object_set_new(o, "dir", json_string(dir == 1 ? "in" : "out"));
	set_u(o, "conn", conn);
	mpr_init_buf(&r, &iov, fr, len);
	if (!dir || frame_decode(&r, dir == 1 ? FRAME_C2B : FRAME_B2C, &h, &hb,
				 NULL) != WIRE_E_OK) {
		json_object_set_new(o, "kind", json_string("undecodable"));
		return o;
	}
	json_object_set_new(o, "kind", json_string(frame_kind_name(h.kind)));
#define U(k, f) if (h.has & FH(WK_##k)) set_u(o, #f, h.f)
#define S(k, f) if (h.has & FH(WK_##k)) json_object_set_new(o, #f, json_string(h.f))
	U(ID, id); S(TO, to); U(TO_ID, to_id); S(FROM, from); U(FROM_ID, from_id);
	S(NAME, name); S(MSG, msg); S(TOPIC, topic); U(SUB, sub); U(COUNT, count);
	U(EVENT, event); U(REASON, reason); U(TIMEOUT, timeout);
	U(FLAGS, flags); U(POLICY, policy); S(FILTER, filter); U(UID, uid);
	U(REF, ref);
#undef U
#undef S
	if (h.has & FH(WK_CONN))
		set_u(o, "conn_id", h.conn);
	if (h.has & FH(WK_CODE))
		json_object_set_new(o, "code", json_string(frame_code_name((int)h.code)));
	if (full) {
		set_u(o, "length", full);
	} else if (hb) {
		size_t bl = (size_t)mpr_left(&r);
		uint32_t n;

		if ((h.kind == WIRE_SEND || h.kind == WIRE_PUBLISH) &&
		    (h.flags & WF_BATCH) &&
		    mpr_read_array(&r, &n) == MPR_OK)
			set_u(o, "batch", n);

		if (cli_json_from_body((const uint8_t *)fr + (len - bl), bl,
				       &body, err, sizeof(err))) {
			json_object_set_new(o, "body", json_null());
			json_object_set_new(o, "body_error", json_string(err));
		} else {
			json_object_set_new(o, "body", body);
		}
	}
	return o;
}

int cmd_monitor(struct cli *c, int argc, char **argv)
{
	const char *filter = NULL;
	int rc;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--filter") == 0 && i + 1 < argc)
			filter = argv[++i];
		else
			return cli_usage_error("monitor", "unexpected argument '%s'",
					       argv[i]);
	}
	if (cli_connect(c))
		return CLI_EXIT_FAIL;
	rc = ipchub_monitor(c->h, filter, c->timeout_ms, NULL);
	if (rc)
		return cli_fail(rc, NULL);
	return cli_recv_loop(c, describe);
}
