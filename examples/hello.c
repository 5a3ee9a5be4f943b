/*
 * hello.c - the smallest complete libipchub program: connect to the hub,
 * register a name, send a message to that name, receive it back, print
 * it. Build it against an installed libipchub with either
 *
 *   cc hello.c $(pkg-config --cflags --libs ipchub) -o hello
 *
 * or CMake (examples/CMakeLists.txt): find_package(ipchub) and link
 * ipchub::ipchub. Run: ./hello [SOCKET] (default: the usual lookup,
 * $IPCHUB_SOCKET, then $XDG_RUNTIME_DIR/ipchub.sock, ...).
 * Exit status: 0 on success, 1 on any ipchub error (printed).
 */
#include <stdio.h>
#include <string.h>

#include <ipchub.h>

static int fail(const char *what, int rc)
{
	fprintf(stderr, "hello: %s: %s (%s)\n", what, ipchub_code_name(rc),
		ipchub_strerror(rc));
	return 1;
}

int main(int argc, char **argv)
{
	struct ipchub_opts opts = {.socket = argc > 1 ? argv[1] : NULL};
	ipchub *h = NULL;
	ipchub_msg *m = NULL;
	ipchub_pack p;
	msgpack_unpacked u;
	int rc;

	rc = ipchub_connect(&opts, &h);
	if (rc)
		return fail("connect", rc);
	rc = ipchub_register(h, "hello", 5000);
	if (rc) {
		ipchub_close(h);
		return fail("register", rc);
	}

	/* Body: the msgpack map {"greeting": "hello, world"}. */
	ipchub_pack_init(&p);
	msgpack_pack_map(&p.pk, 1);
	ipchub_pack_str(&p, "greeting");
	ipchub_pack_str(&p, "hello, world");
	rc = ipchub_send(h, "hello", p.buf.data, p.buf.size, NULL);
	ipchub_pack_destroy(&p);
	if (!rc)
		rc = ipchub_flush(h, 5000);
	if (!rc)
		rc = ipchub_recv(h, 5000, &m);
	if (rc) {
		ipchub_close(h);
		return fail("send/receive", rc);
	}

	msgpack_unpacked_init(&u);
	rc = ipchub_msg_unpack(m, &u);
	if (!rc && u.data.type == MSGPACK_OBJECT_MAP && u.data.via.map.size == 1 &&
	    u.data.via.map.ptr[0].val.type == MSGPACK_OBJECT_STR) {
		const msgpack_object_str *s = &u.data.via.map.ptr[0].val.via.str;

		printf("hello: %s sent \"%.*s\" to %s via %s\n",
		       ipchub_msg_from(m), (int)s->size, s->ptr, ipchub_msg_to(m),
		       ipchub_socket_path(h));
	} else if (!rc) {
		rc = IPCHUB_E_BAD_BODY;
	}
	msgpack_unpacked_destroy(&u);
	ipchub_msg_free(m);
	ipchub_close(h);
	return rc ? fail("unpack", rc) : 0;
}
