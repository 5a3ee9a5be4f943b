/*
 * c_peer.c - the C side of the cross-language test
 * (client/node/test/interop.test.js drives it).
 *
 * Model: registers "c-peer" and serves until told "c-bye":
 * - a REQUEST is answered with a bin holding the exact bytes of its body,
 *   and a SEND is answered the same way with a SEND back to its sender,
 *   so the Node side can compare what arrived with what it encoded;
 * - the string "c-go" starts the other direction: a body holding every
 *   msgpack type, packed with msgpack-c, goes to "node-peer" as a request
 *   and as a send; Node decodes and re-encodes it, and the bytes that come
 *   back must equal the bytes sent. The verdict goes to node-peer as the
 *   string "c-ok" or "c-fail: <why>";
 * - the string "c-fds" sends a pipe's write end to "node-peer" with
 *   ipchub_send_fds() and ipchub_request_fds(): the Node client announces
 *   no FDS, so each must come back as FDS_UNSUPPORTED with its id and
 *   "to", and the broker must have closed its copies (the read end sees
 *   EOF once ours is closed). The verdict goes to node-peer as "c-fds-ok"
 *   or "c-fds-fail: <why>".
 * The peer's name is "node-peer" unless given as the second argument
 * (the Python client's test, client/python/tests/test_interop.py, uses
 * "py-peer").
 * Exit status 0 after "c-bye", 1 on any failure of its own.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ipchub.h"

static int is_str(const ipchub_msg *m, const char *s)
{
	msgpack_unpacked u;
	int yes;

	msgpack_unpacked_init(&u);
	yes = ipchub_msg_unpack(m, &u) == IPCHUB_OK &&
	      u.data.type == MSGPACK_OBJECT_STR &&
	      u.data.via.str.size == strlen(s) &&
	      memcmp(u.data.via.str.ptr, s, strlen(s)) == 0;
	msgpack_unpacked_destroy(&u);
	return yes;
}

/* Body = bin(exact bytes of m's body). */
static void pack_echo(ipchub_pack *p, const ipchub_msg *m)
{
	size_t len;
	const void *b = ipchub_msg_body(m, &len);

	ipchub_pack_reset(p);
	msgpack_pack_bin_with_body(&p->pk, b ? b : "", b ? len : 0);
}

/* Every msgpack type, in the encodings msgpack-c picks. Floats are not
 * integral (an integral float would come back from JavaScript as an
 * integer), and the timestamp carries whole seconds (JavaScript's Date
 * has milliseconds; the 32-bit form round-trips exactly). */
static void pack_sample(ipchub_pack *p)
{
	static const char bin[] = {0, 1, 2, (char)0xfe, (char)0xff};
	static const char ts32[] = {0x65, 0x53, (char)0xf1, 0x00};
	static const char ext5[] = {'e', 'x', 't'};

	ipchub_pack_reset(p);
	msgpack_pack_map(&p->pk, 13);
	msgpack_pack_str_with_body(&p->pk, "u8", 2);
	msgpack_pack_uint64(&p->pk, 200);
	msgpack_pack_str_with_body(&p->pk, "u64max", 6);
	msgpack_pack_uint64(&p->pk, UINT64_MAX);
	msgpack_pack_str_with_body(&p->pk, "i64min", 6);
	msgpack_pack_int64(&p->pk, INT64_MIN);
	msgpack_pack_str_with_body(&p->pk, "neg", 3);
	msgpack_pack_int64(&p->pk, -33);
	msgpack_pack_str_with_body(&p->pk, "f64", 3);
	msgpack_pack_double(&p->pk, 3.141592653589793);
	msgpack_pack_str_with_body(&p->pk, "utf8", 4);
	msgpack_pack_str_with_body(&p->pk, "h\xc3\xa9llo \xe2\x82\xac", 11);
	msgpack_pack_str_with_body(&p->pk, "bin", 3);
	msgpack_pack_bin_with_body(&p->pk, bin, sizeof(bin));
	msgpack_pack_str_with_body(&p->pk, "nil", 3);
	msgpack_pack_nil(&p->pk);
	msgpack_pack_str_with_body(&p->pk, "t", 1);
	msgpack_pack_true(&p->pk);
	msgpack_pack_str_with_body(&p->pk, "f", 1);
	msgpack_pack_false(&p->pk);
	msgpack_pack_str_with_body(&p->pk, "nested", 6);
	msgpack_pack_map(&p->pk, 1);
	msgpack_pack_str_with_body(&p->pk, "list", 4);
	msgpack_pack_array(&p->pk, 3);
	msgpack_pack_int64(&p->pk, 1);
	msgpack_pack_map(&p->pk, 1);
	msgpack_pack_str_with_body(&p->pk, "deep", 4);
	msgpack_pack_array(&p->pk, 0);
	msgpack_pack_str_with_body(&p->pk, "", 0);
	msgpack_pack_str_with_body(&p->pk, "ext5", 4);
	msgpack_pack_ext_with_body(&p->pk, ext5, sizeof(ext5), 5);
	msgpack_pack_str_with_body(&p->pk, "time", 4);
	msgpack_pack_ext_with_body(&p->pk, ts32, sizeof(ts32), -1);
}

static int same_body(const ipchub_msg *m, const ipchub_pack *p)
{
	size_t len;
	const void *b = ipchub_msg_body(m, &len);

	return b && len == p->buf.size && memcmp(b, p->buf.data, len) == 0;
}

static const char *peer = "node-peer";

/* The C -> Node direction; returns NULL or why it failed. */
static const char *c_to_node(ipchub *h)
{
	ipchub_pack s;
	ipchub_msg *m = NULL;
	const char *why = NULL;
	int rc;

	ipchub_pack_init(&s);
	pack_sample(&s);
	rc = ipchub_request(h, peer, s.buf.data, s.buf.size, 5000, &m);
	if (rc != IPCHUB_OK)
		why = "request to node-peer failed";
	else if (!same_body(m, &s))
		why = "the reply's bytes differ from the request's";
	ipchub_msg_free(m);
	m = NULL;
	if (!why && ipchub_send(h, peer, s.buf.data, s.buf.size, NULL))
		why = "send to node-peer failed";
	/* Node sends the value back; anything else first is a failure. */
	if (!why && ipchub_recv(h, 5000, &m) != IPCHUB_OK)
		why = "no message back from node-peer";
	else if (!why && (ipchub_msg_kind(m) != IPCHUB_KIND_SEND || !same_body(m, &s)))
		why = "the echoed send's bytes differ";
	ipchub_msg_free(m);
	ipchub_pack_destroy(&s);
	return why;
}

/* The fd fallback towards a receiver without FDS; NULL or why it failed. */
static const char *fds_to_node(ipchub *h)
{
	static const char nil[] = "\xc0";
	ipchub_msg *m = NULL;
	const char *why = NULL;
	struct pollfd pf;
	uint64_t id = 0;
	int p[2];
	char c;

	if (pipe(p))
		return "pipe failed";
	if (ipchub_send_fds(h, peer, nil, 1, &p[1], 1, &id) ||
	    ipchub_flush(h, 5000))
		why = "send_fds failed locally";
	else if (ipchub_recv(h, 5000, &m) != IPCHUB_OK)
		why = "no answer to the send with a descriptor";
	else if (ipchub_msg_error(m) != IPCHUB_E_FDS_UNSUPPORTED)
		why = "the send's answer is not FDS_UNSUPPORTED";
	else if (ipchub_msg_id(m) != id)
		why = "FDS_UNSUPPORTED does not carry the send's id";
	else if (!ipchub_msg_to(m) || strcmp(ipchub_msg_to(m), peer))
		why = "FDS_UNSUPPORTED does not name node-peer";
	ipchub_msg_free(m);
	m = NULL;
	if (!why && ipchub_request_fds(h, peer, nil, 1, &p[1], 1, 5000,
				       &m) != IPCHUB_E_FDS_UNSUPPORTED)
		why = "the request with a descriptor is not FDS_UNSUPPORTED";
	ipchub_msg_free(m);
	/* Every copy of the write end but ours is closed: EOF after ours. */
	close(p[1]);
	pf.fd = p[0];
	pf.events = POLLIN;
	if (!why && (poll(&pf, 1, 5000) != 1 || read(p[0], &c, 1) != 0))
		why = "a copy of the descriptor is still open";
	close(p[0]);
	return why;
}

int main(int argc, char **argv)
{
	struct ipchub_opts o = {.socket = argc > 1 ? argv[1] : NULL};
	ipchub *h = NULL;
	ipchub_pack p;
	int rc;

	if (argc > 2)
		peer = argv[2];
	if (ipchub_connect(&o, &h) || ipchub_register(h, "c-peer", 5000)) {
		fprintf(stderr, "c_peer: cannot connect or register\n");
		return 1;
	}
	printf("c_peer: ready\n");
	fflush(stdout);
	ipchub_pack_init(&p);
	for (;;) {
		ipchub_msg *m = NULL;

		rc = ipchub_recv(h, 30000, &m);
		if (rc != IPCHUB_OK) {
			fprintf(stderr, "c_peer: recv: %s\n", ipchub_code_name(rc));
			break;
		}
		if (ipchub_msg_error(m)) {
			fprintf(stderr, "c_peer: error %s\n", ipchub_code_name(ipchub_msg_error(m)));
			rc = 1;
		} else if (is_str(m, "c-bye")) {
			ipchub_msg_free(m);
			break;
		} else if (is_str(m, "c-go")) {
			const char *why = c_to_node(h);
			char verdict[256];

			snprintf(verdict, sizeof(verdict), why ? "c-fail: %s" : "c-ok", why);
			ipchub_pack_reset(&p);
			msgpack_pack_str_with_body(&p.pk, verdict, strlen(verdict));
			ipchub_send(h, peer, p.buf.data, p.buf.size, NULL);
			ipchub_flush(h, 5000);
		} else if (is_str(m, "c-fds")) {
			const char *why = fds_to_node(h);
			char verdict[256];

			snprintf(verdict, sizeof(verdict),
				 why ? "c-fds-fail: %s" : "c-fds-ok", why);
			ipchub_pack_reset(&p);
			msgpack_pack_str_with_body(&p.pk, verdict, strlen(verdict));
			ipchub_send(h, peer, p.buf.data, p.buf.size, NULL);
		} else if (ipchub_msg_kind(m) == IPCHUB_KIND_REQUEST) {
			pack_echo(&p, m);
			ipchub_reply(h, m, p.buf.data, p.buf.size);
		} else if (ipchub_msg_kind(m) == IPCHUB_KIND_SEND && ipchub_msg_from(m)) {
			pack_echo(&p, m);
			ipchub_send(h, ipchub_msg_from(m), p.buf.data, p.buf.size, NULL);
		}
		ipchub_msg_free(m);
		ipchub_flush(h, 5000);
	}
	ipchub_pack_destroy(&p);
	ipchub_close(h);
	return rc == IPCHUB_OK ? 0 : 1;
}
