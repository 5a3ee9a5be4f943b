/*
 * memfd.h - memfd bodies (PROTOCOL.md 6.10): create, seal, check and map
 * the sealed memory file that carries a large body instead of the socket.
 * Shared by the broker (which checks and, for receivers without MEMFD,
 * reads them) and the client library (which creates and maps them).
 *
 * Model: a memfd body is a memfd whose size is exactly the body length and
 * that carries all four seals of MEMFD_SEALS, so that once checked neither
 * its sender nor anyone else can change a byte or its size while others
 * map it. The functions here never own a descriptor they are given; the
 * ones that create one hand it to the caller. Mappings are plain mmap()
 * regions the caller munmap()s.
 */
#ifndef IPCHUB_PROTO_MEMFD_H
#define IPCHUB_PROTO_MEMFD_H

#include <stddef.h>
#include <stdint.h>

/* The seals a memfd body must carry (F_SEAL_* of <fcntl.h>). */
#define MEMFD_SEALS (0x0001 | 0x0002 | 0x0004 | 0x0008) /* SEAL|SHRINK|GROW|WRITE */

/* A new memfd of len bytes (zero-filled, close-on-exec, sealing allowed)
 * in *fd (the caller owns it). Returns 0, or -errno (*fd untouched). */
int memfd_body_new(size_t len, int *fd);

/* Add MEMFD_SEALS to fd. Fails with -EBUSY while a writable shared
 * mapping of it exists. Returns 0 or -errno. */
int memfd_body_seal(int fd);

/* Whether fd is a memfd body of exactly len bytes: WIRE_E_OK,
 * WIRE_E_MEMFD_UNSEALED (not a memfd, or a seal missing) or
 * WIRE_E_MEMFD_SIZE (its size is not len). Two system calls (fcntl
 * F_GET_SEALS, fstat); the descriptor is left as it is. */
int memfd_body_check(int fd, uint64_t len);

/* Map len (> 0) bytes of fd read-only (MAP_PRIVATE: a sealed file never
 * changes, so no copy-on-write ever happens), prefaulted (MAP_POPULATE:
 * the body is about to be read whole, and one call is cheaper than a
 * fault per page). Returns the mapping, or NULL with errno set. */
void *memfd_body_map(int fd, size_t len);

#endif
