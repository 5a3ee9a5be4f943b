/*
 * key.c - see key.h. The file is opened once (O_NOFOLLOW, so a symlink
 * cannot redirect the check), checked with fstat on that descriptor (no
 * race between check and read), and read into a stack buffer that is
 * wiped before returning, like every intermediate copy of the seed.
 */
#include "key.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "ipchub.h"
#include "limits.h"

_Static_assert(sizeof(((struct key *)0)->sk) == crypto_sign_SECRETKEYBYTES,
	       "sk size");
_Static_assert(AUTH_PK_LEN == crypto_sign_PUBLICKEYBYTES, "pk size");
_Static_assert(AUTH_SIG_LEN == crypto_sign_BYTES, "sig size");

static int init_sodium(char *err, size_t cap)
{
	if (sodium_init() < 0) {
		snprintf(err, cap, "libsodium initialization failed");
		return IPCHUB_E_NOMEM;
	}
	return IPCHUB_OK;
}

int key_generate(const char *path, uint8_t pk[AUTH_PK_LEN], char *err,
		 size_t cap)
{
	uint8_t seed[crypto_sign_SEEDBYTES], sk[crypto_sign_SECRETKEYBYTES];
	uint8_t mypk[AUTH_PK_LEN];
	char hex[2 * crypto_sign_SEEDBYTES + 1], pkt[PKTEXT_LEN + 1];
	char text[512];
	int fd, n, rc;
	size_t off = 0;

	rc = init_sodium(err, cap);
	if (rc)
		return rc;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		  0600);
	if (fd < 0) {
		int e = errno;

		snprintf(err, cap, "cannot create %s: %s%s", path, strerror(e),
			 e == EEXIST ? " (a key file is never overwritten)" : "");
		return e == EEXIST ? IPCHUB_E_BAD_KEY : IPCHUB_E_IO;
	}
	/* The umask may have removed bits; never added any. Make it exact. */
	if (fchmod(fd, 0600) < 0) {
		snprintf(err, cap, "chmod %s: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		return IPCHUB_E_IO;
	}
	randombytes_buf(seed, sizeof(seed));
	crypto_sign_seed_keypair(mypk, sk, seed);
	sodium_bin2hex(hex, sizeof(hex), seed, sizeof(seed));
	pktext_format(mypk, pkt, sizeof(pkt));
	n = snprintf(text, sizeof(text),
		     "# ipchub secret key (Ed25519 seed). Keep it private: mode 0600.\n"
		     "# public key: %s\n"
		     "%s%s\n",
		     pkt, KEY_SECRET_PREFIX, hex);
	rc = IPCHUB_OK;
	while (off < (size_t)n) {
		ssize_t w = write(fd, text + off, (size_t)n - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			snprintf(err, cap, "write %s: %s", path,
				 w < 0 ? strerror(errno) : "short write");
			rc = IPCHUB_E_IO;
			break;
		}
		off += (size_t)w;
	}
	if (rc == IPCHUB_OK && fsync(fd) < 0) {
		snprintf(err, cap, "fsync %s: %s", path, strerror(errno));
		rc = IPCHUB_E_IO;
	}
	if (close(fd) < 0 && rc == IPCHUB_OK) {
		snprintf(err, cap, "close %s: %s", path, strerror(errno));
		rc = IPCHUB_E_IO;
	}
	if (rc != IPCHUB_OK)
		unlink(path);
	else
		memcpy(pk, mypk, AUTH_PK_LEN);
	sodium_memzero(seed, sizeof(seed));
	sodium_memzero(sk, sizeof(sk));
	sodium_memzero(hex, sizeof(hex));
	sodium_memzero(text, sizeof(text));
	return rc;
}

/* Find the secret line in buf and decode its seed. Returns 0 or -1. */
static int parse_secret(char *buf, uint8_t seed[crypto_sign_SEEDBYTES],
			const char **why)
{
	size_t pl = sizeof(KEY_SECRET_PREFIX) - 1;
	int found = 0;
	char *line, *next;

	for (line = buf; line && *line; line = next) {
		size_t len, bin_len = 0;
		const char *end = NULL;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		len = strlen(line);
		if (len && line[len - 1] == '\r')
			line[--len] = '\0';
		if (len == 0 || line[0] == '#')
			continue;
		if (len < pl || memcmp(line, KEY_SECRET_PREFIX, pl) != 0) {
			*why = "a line is neither a comment nor the secret key";
			return -1;
		}
		if (found++) {
			*why = "more than one secret key line";
			return -1;
		}
		if (len - pl != 2 * crypto_sign_SEEDBYTES ||
		    sodium_hex2bin(seed, crypto_sign_SEEDBYTES, line + pl,
				   len - pl, NULL, &bin_len, &end) != 0 ||
		    bin_len != crypto_sign_SEEDBYTES) {
			*why = "the secret key is not 64 hex digits";
			return -1;
		}
	}
	if (!found) {
		*why = "no '" KEY_SECRET_PREFIX "' line";
		return -1;
	}
	return 0;
}

int key_load(const char *path, struct key *k, char *err, size_t cap)
{
	char buf[IPCHUB_KEY_FILE_MAX + 1];
	uint8_t seed[crypto_sign_SEEDBYTES];
	struct stat st;
	size_t got = 0;
	const char *why = NULL;
	int fd, rc;

	rc = init_sodium(err, cap);
	if (rc)
		return rc;
	if (!path || !*path) {
		snprintf(err, cap, "no key file given");
		return IPCHUB_E_BAD_KEY;
	}
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		snprintf(err, cap, "cannot open key file %s: %s", path,
			 errno == ELOOP ? "it is a symbolic link" : strerror(errno));
		return IPCHUB_E_BAD_KEY;
	}
	if (fstat(fd, &st) < 0) {
		snprintf(err, cap, "key file %s: %s", path, strerror(errno));
		close(fd);
		return IPCHUB_E_BAD_KEY;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, cap, "key file %s is not a regular file", path);
		close(fd);
		return IPCHUB_E_BAD_KEY;
	}
	if (st.st_mode & 077) {
		snprintf(err, cap,
			 "key file %s is accessible by group or others (mode %04o); "
			 "refusing it: run chmod 600 %s",
			 path, (unsigned)(st.st_mode & 07777), path);
		close(fd);
		return IPCHUB_E_BAD_KEY;
	}
	if (st.st_uid != geteuid()) {
		snprintf(err, cap,
			 "key file %s belongs to uid %lu, not to this process (uid %lu)",
			 path, (unsigned long)st.st_uid,
			 (unsigned long)geteuid());
		close(fd);
		return IPCHUB_E_BAD_KEY;
	}
	for (;;) {
		ssize_t n = read(fd, buf + got, sizeof(buf) - 1 - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, cap, "read %s: %s", path, strerror(errno));
			rc = IPCHUB_E_BAD_KEY;
			break;
		}
		if (n == 0)
			break;
		got += (size_t)n;
		if (got == sizeof(buf) - 1) {
			snprintf(err, cap, "key file %s is larger than %u bytes",
				 path, IPCHUB_KEY_FILE_MAX);
			rc = IPCHUB_E_BAD_KEY;
			break;
		}
	}
	close(fd);
	buf[got] = '\0';
	if (rc == IPCHUB_OK && memchr(buf, '\0', got)) {
		snprintf(err, cap, "key file %s is not a text file", path);
		rc = IPCHUB_E_BAD_KEY;
	}
	if (rc == IPCHUB_OK && parse_secret(buf, seed, &why) < 0) {
		snprintf(err, cap, "key file %s is malformed: %s", path, why);
		rc = IPCHUB_E_BAD_KEY;
	}
	if (rc == IPCHUB_OK)
		crypto_sign_seed_keypair(k->pk, k->sk, seed);
	sodium_memzero(seed, sizeof(seed));
	sodium_memzero(buf, sizeof(buf));
	return rc;
}

void key_sign(const struct key *k, const struct transcript_in *in,
	      uint8_t sig[AUTH_SIG_LEN])
{
	uint8_t t[TRANSCRIPT_LEN];

	transcript_build(t, in);
	crypto_sign_detached(sig, NULL, t, sizeof(t), k->sk);
	sodium_memzero(t, sizeof(t));
}

void key_wipe(struct key *k)
{
	sodium_memzero(k, sizeof(*k));
}
