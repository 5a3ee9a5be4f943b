/*
 * addr.h - where the broker listens: socket path resolution shared by the
 * broker and every client, so that both find the same socket.
 *
 * Order: an explicit path, else $IPCHUB_SOCKET, else
 * $XDG_RUNTIME_DIR/ipchub.sock, else /tmp/ipchub-<uid>/ipchub.sock.
 * A path beginning with '@' names a Linux abstract socket ("@name" binds
 * "\0name"). On Windows the path is a named pipe: an explicit path, else
 * $IPCHUB_SOCKET, else \\.\pipe\ipchub-<user name>. Pure string work plus
 * getenv/getuid (GetUserName on Windows): no socket calls.
 */
#ifndef IPCHUB_PROTO_ADDR_H
#define IPCHUB_PROTO_ADDR_H

#include <stddef.h>
#ifndef _WIN32
#include <sys/socket.h>
#include <sys/un.h>
#endif

/* Resolve the socket path into out (NUL-terminated). explicit_path may be
 * NULL or "". Returns 0, or -ENAMETOOLONG if it does not fit out or a
 * sockaddr_un; out is untouched on failure. */
int addr_resolve(const char *explicit_path, char *out, size_t cap);

#ifndef _WIN32
/* Fill a sockaddr_un for a resolved path (handles '@' abstract names).
 * Returns 0 or -ENAMETOOLONG / -EINVAL (empty). */
int addr_sockaddr(const char *path, struct sockaddr_un *sa, socklen_t *len);
#endif

/* Whether path names an abstract socket. */
int addr_is_abstract(const char *path);

#endif
