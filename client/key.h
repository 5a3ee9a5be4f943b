/*
 * key.h - client key files: generate an Ed25519 key pair, load a secret
 * key with permission checks, and sign an authentication transcript
 * (internal to libipchub and the CLI).
 *
 * Secret key file format (text, also in SECURITY.md): lines starting with
 * '#' are comments; exactly one line is
 *     ed25519-secret:<64 hex digits>
 * the 32-byte Ed25519 seed from which libsodium derives the key pair
 * (crypto_sign_seed_keypair). keygen writes a comment with the public key
 * too. The file must be a regular file owned by the effective uid with no
 * permission bits for group or others (0600 or stricter); anything else
 * is refused before the contents are read.
 *
 * Model: struct key holds the secret key in memory for as short as
 * possible: the caller loads it, signs, and wipes it with key_wipe()
 * (sodium_memzero). The functions never log; they return an IPCHUB_E_*
 * code and write a one-line reason into err.
 */
#ifndef IPCHUB_CLIENT_KEY_H
#define IPCHUB_CLIENT_KEY_H

#include <stddef.h>
#include <stdint.h>

#include "transcript.h"

#define KEY_SECRET_PREFIX "ed25519-secret:"

struct key {
	uint8_t pk[AUTH_PK_LEN];
	uint8_t sk[64]; /* libsodium's secret key: seed || pk */
};

/* Create a new key pair and write its secret to path (created with
 * O_EXCL and mode 0600: an existing file is never overwritten). On
 * success *pk receives the public key. Returns IPCHUB_OK, IPCHUB_E_BAD_KEY
 * (the file exists), IPCHUB_E_IO or IPCHUB_E_NOMEM, with err set. */
int key_generate(const char *path, uint8_t pk[AUTH_PK_LEN], char *err,
		 size_t cap);

/* Load the secret key at path into *k after checking the file (see
 * above). Returns IPCHUB_OK or IPCHUB_E_BAD_KEY with err set; *k is
 * untouched (and nothing secret is left in memory) on failure. */
int key_load(const char *path, struct key *k, char *err, size_t cap);

/* Sign the transcript of in (whose pk must be k->pk) into sig. */
void key_sign(const struct key *k, const struct transcript_in *in,
	      uint8_t sig[AUTH_SIG_LEN]);

/* Wipe *k (sodium_memzero). */
void key_wipe(struct key *k);

#endif
