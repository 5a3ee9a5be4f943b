/*
 * name.c - the grammar of ipchub names (see name.h).
 *
 * Model: pure functions over (pointer, length); no NUL terminator is
 * assumed and none is read past len. name_check() is the only judge of a
 * well-formed name; name_is_reserved() only answers for names it accepts.
 */
#include "name.h"

#include <string.h>

#include "limits.h"
#include "wire.h"

static bool name_char_ok(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

int name_check(const char *s, size_t len)
{
	if (len == 0 || len > IPCHUB_MAX_NAME)
		return WIRE_E_BAD_NAME;
	if (s[0] == '.' || s[len - 1] == '.')
		return WIRE_E_BAD_NAME;
	for (size_t k = 0; k < len; k++) {
		if (!name_char_ok((unsigned char)s[k]))
			return WIRE_E_BAD_NAME;
		if (s[k] == '.' && k + 1 < len && s[k + 1] == '.')
			return WIRE_E_BAD_NAME;
	}
	return WIRE_E_OK;
}

bool name_is_reserved(const char *s, size_t len)
{
	const size_t blen = sizeof(WIRE_BROKER_NAME) - 1;
	const size_t plen = sizeof(WIRE_RESERVED_PREFIX) - 1;

	if (len == blen && memcmp(s, WIRE_BROKER_NAME, blen) == 0)
		return true;
	return len >= plen && memcmp(s, WIRE_RESERVED_PREFIX, plen) == 0;
}

int name_check_hub(const char *s, size_t len)
{
	if (len == 0 || len > IPCHUB_MAX_HUB)
		return WIRE_E_BAD_NAME;
	for (size_t k = 0; k < len; k++) {
		unsigned char c = (unsigned char)s[k];

		if (c == '.' || !name_char_ok(c))
			return WIRE_E_BAD_NAME;
	}
	return WIRE_E_OK;
}

int name_check_addr(const char *s, size_t len)
{
	const char *at = len ? memchr(s, '@', len) : NULL;
	size_t l;

	if (!at)
		return name_check(s, len);
	if (len > IPCHUB_MAX_NAME)
		return WIRE_E_BAD_NAME;
	l = (size_t)(at - s);
	if (name_check(s, l) != WIRE_E_OK)
		return WIRE_E_BAD_NAME;
	return name_check_hub(at + 1, len - l - 1);
}

bool name_is_remote(const char *s, size_t len)
{
	return len && memchr(s, '@', len) != NULL;
}
