/*
 * hdr.c - shared argument checks and header building; see hdr.h.
 */
#include <string.h>

#include "hdr.h"
#include "limits.h"
#include "msg.h"
#include "name.h"

static int check_with(int (*grammar)(const char *, size_t),
		      const char *name, size_t *len)
{
	size_t n;

	if (!name)
		return IPCHUB_E_INVALID;
	n = strnlen(name, IPCHUB_MAX_NAME + 1);
	if (grammar(name, n) != WIRE_E_OK)
		return IPCHUB_E_BAD_NAME;
	*len = n;
	return IPCHUB_OK;
}

int hdr_check_name(const char *name, size_t *len)
{
	return check_with(name_check, name, len);
}

int hdr_check_addr(const char *name, size_t *len)
{
	return check_with(name_check_addr, name, len);
}

int hdr_check_body(uint32_t max_frame, const void *body, size_t len)
{
	if (len == 0)
		return IPCHUB_OK;
	if (!body)
		return IPCHUB_E_INVALID;
	if (len > max_frame)
		return IPCHUB_E_TOO_LARGE;
	return ipchub_body_check(body, len);
}

int hdr_reply(struct frame_hdr *f, const ipchub_msg *req, int code,
	      const char *text)
{
	if (!req || req->kind != IPCHUB_KIND_REQUEST)
		return IPCHUB_E_INVALID;
	frame_init(f, WIRE_REPLY);
	f->id = req->id;
	f->to_id = req->from_id;
	f->has |= FH(WK_ID) | FH(WK_TO_ID);
	if (code) {
		f->code = (uint32_t)code;
		f->has |= FH(WK_CODE);
	}
	if (text) {
		size_t n = strnlen(text, IPCHUB_MAX_ERRMSG + 1);

		if (n > IPCHUB_MAX_ERRMSG) {
			/* Cut at a UTF-8 character boundary. */
			n = IPCHUB_MAX_ERRMSG;
			while (n > 0 && ((unsigned char)text[n] & 0xc0) == 0x80)
				n--;
		}
		frame_set_str(f, WK_MSG, text, n);
	}
	return IPCHUB_OK;
}
