/*
 * deps_smoke.c - run under Wine by the win_deps ctest entry: checks that
 * the libraries scripts/mingw-deps cross-built work in a Windows process
 * the way ipchub uses them: libsodium signs and verifies (sodium_init,
 * crypto_sign_*), msgpack-c packs and unpacks a map, and libevent's loop
 * wakes on a readable loopback socketpair (evutil_socketpair) - the
 * object a named-pipe bridge would hand to the loop. Exit 0 when all hold;
 * otherwise 1 with the failed step on stderr.
 */
#include <stdio.h>
#include <string.h>

#include <event2/event.h>
#include <event2/util.h>
#include <msgpack.h>
#include <sodium.h>

static int fail(const char *what)
{
	fprintf(stderr, "deps_smoke: %s failed\n", what);
	return 1;
}

static int check_sodium(void)
{
	unsigned char seed[crypto_sign_SEEDBYTES], pk[crypto_sign_PUBLICKEYBYTES];
	unsigned char sk[crypto_sign_SECRETKEYBYTES], sig[crypto_sign_BYTES];
	static const unsigned char msg[] = "ipchub";

	if (sodium_init() < 0)
		return fail("sodium_init");
	randombytes_buf(seed, sizeof(seed));
	if (crypto_sign_seed_keypair(pk, sk, seed) != 0 ||
	    crypto_sign_detached(sig, NULL, msg, sizeof(msg), sk) != 0)
		return fail("crypto_sign");
	if (crypto_sign_verify_detached(sig, msg, sizeof(msg), pk) != 0)
		return fail("crypto_sign_verify_detached (good signature)");
	sig[0] ^= 1;
	if (crypto_sign_verify_detached(sig, msg, sizeof(msg), pk) == 0)
		return fail("crypto_sign_verify_detached (bad signature)");
	return 0;
}

static int check_msgpack(void)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_unpacked u;
	int ok;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 1);
	msgpack_pack_uint8(&pk, 7);
	msgpack_pack_str(&pk, 5);
	msgpack_pack_str_body(&pk, "hello", 5);
	msgpack_unpacked_init(&u);
	ok = msgpack_unpack_next(&u, sb.data, sb.size, NULL) == MSGPACK_UNPACK_SUCCESS &&
	     u.data.type == MSGPACK_OBJECT_MAP && u.data.via.map.size == 1 &&
	     u.data.via.map.ptr[0].key.via.u64 == 7 &&
	     u.data.via.map.ptr[0].val.via.str.size == 5 &&
	     memcmp(u.data.via.map.ptr[0].val.via.str.ptr, "hello", 5) == 0;
	msgpack_unpacked_destroy(&u);
	msgpack_sbuffer_destroy(&sb);
	return ok ? 0 : fail("msgpack round trip");
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
	char c = 0;

	(void)what;

	if (recv(fd, &c, 1, 0) == 1 && c == 'x')
		*(int *)arg = 1;
}

static int check_libevent(void)
{
	WSADATA wsa;
	evutil_socket_t sv[2];
	struct event_base *base;
	struct event *ev;
	struct timeval tv = { 10, 0 };
	int got = 0;

	if (WSAStartup(MAKEWORD(2, 2), &wsa) != 0)
		return fail("WSAStartup");
	if (evutil_socketpair(AF_INET, SOCK_STREAM, 0, sv) < 0)
		return fail("evutil_socketpair");
	base = event_base_new();
	if (!base)
		return fail("event_base_new");
	ev = event_new(base, sv[1], EV_READ, on_read, &got);
	if (!ev || event_add(ev, &tv) < 0)
		return fail("event_add");
	if (send(sv[0], "x", 1, 0) != 1)
		return fail("send");
	event_base_dispatch(base);
	event_free(ev);
	event_base_free(base);
	evutil_closesocket(sv[0]);
	evutil_closesocket(sv[1]);
	WSACleanup();
	return got ? 0 : fail("libevent wake-up on the socketpair");
}

int main(void)
{
	if (check_sodium() || check_msgpack() || check_libevent())
		return 1;
	printf("deps_smoke: libsodium, msgpack-c and libevent work\n");
	return 0;
}
