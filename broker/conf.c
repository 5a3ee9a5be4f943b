/*
 * conf.c - defaults, parsing and validation of struct broker_conf (see
 * conf.h). Parsing never accepts signs, spaces or trailing garbage: a
 * typo on the command line is an error, not a silently different limit.
 */
#include "conf.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

void conf_defaults(struct broker_conf *c)
{
	memset(c, 0, sizeof(*c));
	c->socket_path = NULL;
	c->socket_mode = CONF_SOCKET_MODE_DEFAULT;
	c->max_frame = IPCHUB_MAX_FRAME_DEFAULT;
	c->queue_hwm = IPCHUB_QUEUE_HWM_DEFAULT;
	c->max_names = IPCHUB_MAX_NAMES_DEFAULT;
	c->max_pending = IPCHUB_MAX_PENDING_DEFAULT;
	c->max_conns = IPCHUB_MAX_CONNS_DEFAULT;
	c->handshake_timeout_ms = IPCHUB_HANDSHAKE_TIMEOUT_MS_DEFAULT;
	c->frame_timeout_ms = IPCHUB_FRAME_TIMEOUT_MS_DEFAULT;
	c->log_level = LOG_LVL_INFO;
}

static int range(char *err, size_t cap, const char *what, uint64_t v,
		 uint64_t lo, uint64_t hi)
{
	if (v >= lo && v <= hi)
		return 0;
	snprintf(err, cap, "%s %llu out of range (allowed %llu..%llu)", what,
		 (unsigned long long)v, (unsigned long long)lo,
		 (unsigned long long)hi);
	return -EINVAL;
}

int conf_validate(const struct broker_conf *c, char *err, size_t cap)
{
	int r = 0;

	if (!r)
		r = range(err, cap, "--max-frame", c->max_frame,
			  IPCHUB_MAX_FRAME_MIN, IPCHUB_MAX_FRAME_MAX);
	if (!r)
		r = range(err, cap, "--queue-hwm", c->queue_hwm,
			  IPCHUB_QUEUE_HWM_MIN, IPCHUB_QUEUE_HWM_MAX);
	if (!r)
		r = range(err, cap, "--max-names", c->max_names, 1,
			  IPCHUB_MAX_NAMES_MAX);
	if (!r)
		r = range(err, cap, "--max-pending", c->max_pending, 1,
			  IPCHUB_MAX_PENDING_MAX);
	if (!r)
		r = range(err, cap, "--max-conns", c->max_conns,
			  CONF_MAX_CONNS_MIN, CONF_MAX_CONNS_MAX);
	if (!r)
		r = range(err, cap, "--handshake-timeout (ms)",
			  c->handshake_timeout_ms, CONF_HANDSHAKE_TIMEOUT_MIN_MS,
			  CONF_HANDSHAKE_TIMEOUT_MAX_MS);
	if (!r)
		r = range(err, cap, "--frame-timeout (ms)", c->frame_timeout_ms,
			  CONF_FRAME_TIMEOUT_MIN_MS, CONF_FRAME_TIMEOUT_MAX_MS);
	if (!r && c->socket_mode > 0777) {
		snprintf(err, cap, "--socket-mode %o out of range (allowed 0..0777)",
			 c->socket_mode);
		r = -EINVAL;
	}
	if (!r && (c->log_level < LOG_LVL_ERROR || c->log_level > LOG_LVL_DEBUG)) {
		snprintf(err, cap, "log level %d out of range", c->log_level);
		r = -EINVAL;
	}
	if (!r && c->socket_path && c->socket_path[0] == '\0') {
		snprintf(err, cap, "--socket: empty path");
		r = -EINVAL;
	}
	return r;
}

/* Digits only, at least one, value accumulated in 64 bits with an
 * overflow check at each step. Returns the end pointer or NULL. */
static const char *parse_digits(const char *s, uint64_t *v, int *overflow)
{
	uint64_t acc = 0;
	const char *p = s;

	*overflow = 0;
	while (*p >= '0' && *p <= '9') {
		if (acc > (UINT64_MAX - 9) / 10)
			*overflow = 1;
		else
			acc = acc * 10 + (uint64_t)(*p - '0');
		p++;
	}
	if (p == s)
		return NULL;
	*v = acc;
	return p;
}

int conf_parse_u32(const char *s, uint32_t *out)
{
	uint64_t v;
	int ovf;
	const char *end = parse_digits(s, &v, &ovf);

	if (!end || *end)
		return -EINVAL;
	if (ovf || v > UINT32_MAX)
		return -ERANGE;
	*out = (uint32_t)v;
	return 0;
}

int conf_parse_size(const char *s, uint32_t *out)
{
	uint64_t v, mult = 1;
	int ovf;
	const char *end = parse_digits(s, &v, &ovf);

	if (!end)
		return -EINVAL;
	switch (tolower((unsigned char)*end)) {
	case '\0':
		break;
	case 'k':
		mult = 1024;
		end++;
		break;
	case 'm':
		mult = 1024 * 1024;
		end++;
		break;
	case 'g':
		mult = 1024 * 1024 * 1024;
		end++;
		break;
	default:
		return -EINVAL;
	}
	if (mult > 1) {
		/* Accept "16M", "16MB", "16MiB". */
		if (tolower((unsigned char)end[0]) == 'i' &&
		    tolower((unsigned char)end[1]) == 'b')
			end += 2;
		else if (tolower((unsigned char)end[0]) == 'b')
			end++;
	}
	if (*end)
		return -EINVAL;
	if (ovf || v > UINT32_MAX / mult)
		return -ERANGE;
	*out = (uint32_t)(v * mult);
	return 0;
}

int conf_parse_mode(const char *s, unsigned *out)
{
	unsigned v = 0;
	const char *p = s;

	if (!*p)
		return -EINVAL;
	for (; *p; p++) {
		if (*p < '0' || *p > '7')
			return -EINVAL;
		v = v * 8 + (unsigned)(*p - '0');
		if (v > 07777)
			return -ERANGE;
	}
	if (v > 0777)
		return -ERANGE;
	*out = v;
	return 0;
}
