/*
 * memfd.c - see memfd.h. Thin wrappers over memfd_create(2), fcntl(2)
 * file seals, fstat(2) and mmap(2); no state.
 */
#include "memfd.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wire.h"

_Static_assert(MEMFD_SEALS == (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW |
			       F_SEAL_WRITE),
	       "MEMFD_SEALS names the four F_SEAL_* bits");

int memfd_body_new(size_t len, int *fd)
{
	int m = memfd_create("ipchub-body", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (m < 0)
		return -errno;
	if (ftruncate(m, (off_t)len) < 0) {
		int e = errno;

		close(m);
		return -e;
	}
	*fd = m;
	return 0;
}

int memfd_body_seal(int fd)
{
	return fcntl(fd, F_ADD_SEALS, MEMFD_SEALS) < 0 ? -errno : 0;
}

int memfd_body_check(int fd, uint64_t len)
{
	struct stat st;
	int seals = fcntl(fd, F_GET_SEALS);

	/* F_GET_SEALS fails (EINVAL) on anything but a memfd or a file
	 * on a sealing-capable filesystem: not a memfd body either way. */
	if (seals < 0 || (seals & MEMFD_SEALS) != MEMFD_SEALS)
		return WIRE_E_MEMFD_UNSEALED;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return WIRE_E_MEMFD_UNSEALED;
	if (st.st_size < 0 || (uint64_t)st.st_size != len)
		return WIRE_E_MEMFD_SIZE;
	return WIRE_E_OK;
}

void *memfd_body_map(int fd, size_t len)
{
	void *p = mmap(NULL, len, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);

	return p == MAP_FAILED ? NULL : p;
}
