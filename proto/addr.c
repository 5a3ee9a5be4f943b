/*
 * addr.c - socket path resolution shared by the broker and every client.
 *
 * Model: pure string work plus getenv()/getuid(); owns no state. The
 * resolved path is assembled and length-checked in full before anything is
 * written to the caller's buffer, so out is untouched on failure. Length
 * limits come from sockaddr_un: a filesystem path needs its NUL inside
 * sun_path (at most sizeof(sun_path) - 1 bytes); an abstract name "@x" is
 * stored as "\0x" without a terminator (at most sizeof(sun_path) bytes).
 */
#include "addr.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef _WIN32
#include <windows.h>
/* A pipe name is at most 256 characters. */
#define ADDR_SUN_MAX 256
/* Windows user names have at most 256 characters (UNLEN). */
#define UNLEN_MAX_ 256
#else
#define ADDR_SUN_MAX sizeof(((struct sockaddr_un *)0)->sun_path)
#endif

int addr_is_abstract(const char *path)
{
	return path != NULL && path[0] == '@';
}

/* Longest string (without NUL) a sockaddr_un can carry for this path. */
static size_t addr_max_len(const char *path)
{
	return addr_is_abstract(path) ? ADDR_SUN_MAX : ADDR_SUN_MAX - 1;
}

static const char *addr_env(const char *var)
{
	const char *v = getenv(var);

	return v != NULL && v[0] != '\0' ? v : NULL;
}

/* out = a + b if it fits both cap and a sockaddr_un. */
static int addr_join(const char *a, const char *b, char *out, size_t cap)
{
	size_t la = strlen(a), lb = strlen(b);

	if (la + lb > addr_max_len(a) || la + lb >= cap)
		return -ENAMETOOLONG;
	memcpy(out, a, la);
	memcpy(out + la, b, lb + 1);
	return 0;
}

int addr_resolve(const char *explicit_path, char *out, size_t cap)
{
	const char *v;
	char tmp[320];

	if (explicit_path != NULL && explicit_path[0] != '\0')
		return addr_join(explicit_path, "", out, cap);
	if ((v = addr_env("IPCHUB_SOCKET")) != NULL)
		return addr_join(v, "", out, cap);
#ifdef _WIN32
	{
		char user[UNLEN_MAX_ + 1];
		DWORD n = sizeof(user);

		if (!GetUserNameA(user, &n))
			snprintf(user, sizeof(user), "default");
		snprintf(tmp, sizeof(tmp), "\\\\.\\pipe\\ipchub-%s", user);
		return addr_join(tmp, "", out, cap);
	}
#else
	if ((v = addr_env("XDG_RUNTIME_DIR")) != NULL) {
		bool slash = v[strlen(v) - 1] == '/';
		return addr_join(v, slash ? "ipchub.sock" : "/ipchub.sock", out,
				 cap);
	}
	snprintf(tmp, sizeof(tmp), "/tmp/ipchub-%lu/ipchub.sock",
		 (unsigned long)getuid());
	return addr_join(tmp, "", out, cap);
#endif
}

#ifndef _WIN32
int addr_sockaddr(const char *path, struct sockaddr_un *sa, socklen_t *len)
{
	size_t n;

	if (path == NULL || path[0] == '\0' || strcmp(path, "@") == 0)
		return -EINVAL;
	n = strlen(path);
	if (n > addr_max_len(path))
		return -ENAMETOOLONG;
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (addr_is_abstract(path)) {
		/* "\0name": the length, not a terminator, ends the name. */
		memcpy(sa->sun_path + 1, path + 1, n - 1);
		*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	} else {
		memcpy(sa->sun_path, path, n + 1);
		*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
				   1);
	}
	return 0;
}
#endif
