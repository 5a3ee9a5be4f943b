/*
 * pack.c - ipchub_pack: a msgpack-c packer writing into its own growable
 * buffer.
 *
 * Model: the packer holds a pointer to the buffer inside the same struct,
 * so an ipchub_pack must not be copied or moved between init and destroy.
 * The buffer (msgpack_sbuffer) is owned by the ipchub_pack and freed by
 * ipchub_pack_destroy(); buf.data/buf.size describe the encoded bytes.
 */
#include <stdint.h>
#include <string.h>

#include "ipchub.h"

void ipchub_pack_init(ipchub_pack *p)
{
	msgpack_sbuffer_init(&p->buf);
	msgpack_packer_init(&p->pk, &p->buf, msgpack_sbuffer_write);
}

void ipchub_pack_reset(ipchub_pack *p) { msgpack_sbuffer_clear(&p->buf); }

void ipchub_pack_destroy(ipchub_pack *p)
{
	if (!p)
		return;
	msgpack_sbuffer_destroy(&p->buf);
	msgpack_sbuffer_init(&p->buf);
}

int ipchub_pack_str(ipchub_pack *p, const char *s)
{
	size_t n;

	if (!p || !s)
		return IPCHUB_E_INVALID;
	n = strlen(s);
	if (n > UINT32_MAX) /* msgpack str lengths are 32-bit */
		return IPCHUB_E_INVALID;
	if (msgpack_pack_str(&p->pk, n) || msgpack_pack_str_body(&p->pk, s, n))
		return IPCHUB_E_NOMEM;
	return IPCHUB_OK;
}
