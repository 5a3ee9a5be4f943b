/*
 * msg.c - message objects handed to the application, and their accessors.
 *
 * Model: a message is immutable once built and owns everything it points
 * to (one allocation: struct, strings, body copy; see msg.h). Accessors
 * return pointers that borrow from it. The body bytes were validated as
 * exactly one msgpack value before the message was built (the session
 * checks every broker frame), but ipchub_msg_unpack() validates again with
 * the bounded reader before msgpack-c sees the bytes: msgpack-c allocates
 * from the counts the data declares, and the validator has proved every
 * count is backed by bytes and the nesting within msgpack-c's 32 levels.
 */
#include <stdlib.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ipchub.h"
#include "limits.h"
#include "mpr.h"
#include "msg.h"

static char *put_str(char **cursor, const char *s, size_t len)
{
	char *dst = *cursor;

	memcpy(dst, s, len);
	dst[len] = '\0';
	*cursor += len + 1;
	return dst;
}

void msg_fill(ipchub_msg *m, const struct frame_hdr *h)
{
	memset(m, 0, sizeof(*m));
	m->kind = h->kind;
	m->id = h->id;
	m->from_id = h->from_id;
	m->timeout = (h->has & FH(WK_TIMEOUT)) ? h->timeout : 0;
	m->code = (h->has & FH(WK_CODE)) ? (int)h->code : 0;
	m->ref = (h->has & FH(WK_REF)) ? h->ref : 0;
	m->uid = (h->has & FH(WK_UID)) ? h->uid : UINT32_MAX;
	if (h->has & FH(WK_KEY)) {
		m->key_len = (uint8_t)h->key_len;
		memcpy(m->key, h->key, h->key_len);
	}
	if (h->has & FH(WK_CLAIM_UID)) {
		m->claim_uid = h->claim_uid;
		m->has_claim_uid = true;
	}
	if (h->has & FH(WK_CLAIM_KEY)) {
		m->claim_key_len = (uint8_t)h->claim_key_len;
		memcpy(m->claim_key, h->claim_key, h->claim_key_len);
	}
	m->sub = h->sub;
	m->count = h->count;
	m->conn = h->conn;
	m->event = h->event;
	m->reason = h->reason;
	m->fds_want = (h->has & FH(WK_FDS)) ? h->fds : 0;
	m->memfd_len = (h->has & FH(WK_MEMFD)) ? h->memfd : 0;
	m->map = NULL;
	m->map_len = 0;
}

void msg_release(ipchub_msg *m)
{
	msg_close_fds(m);
	if (m->map) {
		munmap(m->map, m->map_len);
		m->map = NULL;
		m->body = NULL;
		m->body_len = 0;
	}
}

void msg_close_fds(ipchub_msg *m)
{
	for (uint32_t i = 0; i < m->nfds; i++)
		if (m->fds[i] >= 0)
			close(m->fds[i]);
	m->nfds = 0;
}

size_t ipchub_msg_fds(const ipchub_msg *m, const int **fds)
{
	if (fds)
		*fds = m->nfds ? m->fds : NULL;
	return m->nfds;
}

int ipchub_msg_take_fd(ipchub_msg *m, size_t i)
{
	int fd;

	if (!m || i >= m->nfds)
		return -1;
	fd = m->fds[i];
	m->fds[i] = -1;
	return fd;
}

int msg_from_frame(const struct frame_hdr *h, const void *body, size_t len,
		   ipchub_msg **out)
{
	bool has_from = h->has & FH(WK_FROM);
	bool has_to = h->has & FH(WK_TO);
	bool has_msg = h->has & FH(WK_MSG);
	bool has_topic = h->has & FH(WK_TOPIC);
	bool has_name = h->has & FH(WK_NAME);
	size_t size = sizeof(struct ipchub_msg);
	struct ipchub_msg *m;
	char *cursor;

	/* All string lengths are bounded by the header limits (< 2 KiB in
	 * total) and len by max_frame, so this sum cannot overflow. */
	if (has_from)
		size += (size_t)h->from_len + 1;
	if (has_to)
		size += (size_t)h->to_len + 1;
	if (has_msg)
		size += (size_t)h->msg_len + 1;
	if (has_topic)
		size += (size_t)h->topic_len + 1;
	if (has_name)
		size += (size_t)h->name_len + 1;
	size += len;

	m = malloc(size);
	if (!m)
		return IPCHUB_E_NOMEM;
	msg_fill(m, h);
	m->size = size;

	cursor = (char *)(m + 1);
	if (has_from)
		m->from = put_str(&cursor, h->from, h->from_len);
	if (has_to)
		m->to = put_str(&cursor, h->to, h->to_len);
	if (has_msg)
		m->errtext = put_str(&cursor, h->msg, h->msg_len);
	if (has_topic)
		m->topic = put_str(&cursor, h->topic, h->topic_len);
	if (has_name)
		m->name = put_str(&cursor, h->name, h->name_len);
	if (len > 0) {
		memcpy(cursor, body, len);
		m->body = (const uint8_t *)cursor;
		m->body_len = len;
	}
	*out = m;
	return IPCHUB_OK;
}

int msg_clone(const ipchub_msg *t, const void *body, size_t len,
	      ipchub_msg **out)
{
	/* The block is the struct, the strings, then the body. */
	size_t head = t->size - t->body_len;
	const char *tb = (const char *)t;
	struct ipchub_msg *m = malloc(head + len);
	char *mb = (char *)m;

	if (!m)
		return IPCHUB_E_NOMEM;
	memcpy(m, t, head);
#define RELOC(f) if (t->f) m->f = mb + (t->f - tb)
	RELOC(from);
	RELOC(to);
	RELOC(errtext);
	RELOC(topic);
	RELOC(name);
#undef RELOC
	m->next = NULL;
	m->size = head + len;
	m->body = NULL;
	m->body_len = len;
	if (len > 0) {
		memcpy(mb + head, body, len);
		m->body = (const uint8_t *)mb + head;
	}
	*out = m;
	return IPCHUB_OK;
}

int ipchub_msg_kind(const ipchub_msg *m) { return m->kind; }

uint64_t ipchub_msg_id(const ipchub_msg *m) { return m->id; }

const char *ipchub_msg_from(const ipchub_msg *m) { return m->from; }

uint64_t ipchub_msg_from_id(const ipchub_msg *m) { return m->from_id; }

const char *ipchub_msg_to(const ipchub_msg *m) { return m->to; }

const void *ipchub_msg_body(const ipchub_msg *m, size_t *len)
{
	if (len)
		*len = m->body_len;
	return m->body;
}

int ipchub_msg_error(const ipchub_msg *m) { return m->code; }

const char *ipchub_msg_error_text(const ipchub_msg *m)
{
	if (m->errtext)
		return m->errtext;
	return m->code ? ipchub_strerror(m->code) : NULL;
}

uint32_t ipchub_msg_timeout(const ipchub_msg *m) { return m->timeout; }

uint32_t ipchub_msg_uid(const ipchub_msg *m) { return m->uid; }

int ipchub_msg_claims(const ipchub_msg *m, uint32_t *uid,
		      const uint8_t **key, size_t *key_len)
{
	if (!m->has_claim_uid && !m->claim_key_len)
		return 0;
	if (uid)
		*uid = m->has_claim_uid ? m->claim_uid : UINT32_MAX;
	if (key)
		*key = m->claim_key_len ? m->claim_key : NULL;
	if (key_len)
		*key_len = m->claim_key_len;
	return 1;
}

const uint8_t *ipchub_msg_key_id(const ipchub_msg *m, size_t *len)
{
	if (len)
		*len = m->key_len;
	return m->key_len ? m->key : NULL;
}

void ipchub_msg_free(ipchub_msg *m)
{
	/* A lent message belongs to its handle, which ends the loan. */
	if (!m || m->lent)
		return;
	msg_release(m);
	free(m);
}

/* Length of an optional string plus its NUL (0 when absent). */
static size_t str_size(const char *s) { return s ? strlen(s) + 1 : 0; }

static const char *dup_str(char **cursor, const char *s)
{
	return s ? put_str(cursor, s, strlen(s)) : NULL;
}

int ipchub_msg_dup(const ipchub_msg *m, ipchub_msg **out)
{
	struct ipchub_msg *c;
	size_t size;
	char *cursor;

	if (!m || !out)
		return IPCHUB_E_INVALID;
	/* Strings are bounded by the header limits and the body by
	 * max_frame: the sum cannot overflow. A lent message's strings live
	 * outside any block, so each is measured rather than relocated. */
	size = sizeof(*c) + str_size(m->from) + str_size(m->to) +
	       str_size(m->errtext) + str_size(m->topic) + str_size(m->name) +
	       m->body_len;
	c = malloc(size);
	if (!c)
		return IPCHUB_E_NOMEM;
	*c = *m;
	c->next = NULL;
	c->lent = false;
	c->size = size;
	c->map = NULL; /* the copy holds the body in its block */
	c->map_len = 0;
	/* The copy owns duplicates of the descriptors still held. */
	for (uint32_t i = 0; i < m->nfds; i++) {
		c->fds[i] = m->fds[i] < 0 ? -1
					   : fcntl(m->fds[i], F_DUPFD_CLOEXEC, 0);
		if (m->fds[i] >= 0 && c->fds[i] < 0) {
			c->nfds = i;
			msg_close_fds(c);
			free(c);
			return IPCHUB_E_NOMEM;
		}
	}
	cursor = (char *)(c + 1);
	c->from = dup_str(&cursor, m->from);
	c->to = dup_str(&cursor, m->to);
	c->errtext = dup_str(&cursor, m->errtext);
	c->topic = dup_str(&cursor, m->topic);
	c->name = dup_str(&cursor, m->name);
	c->body = NULL;
	if (m->body_len > 0) {
		memcpy(cursor, m->body, m->body_len);
		c->body = (const uint8_t *)cursor;
	}
	*out = c;
	return IPCHUB_OK;
}

int ipchub_body_check(const void *buf, size_t len)
{
	if (!buf || len == 0)
		return IPCHUB_E_BAD_BODY;
	/* One flat value of exactly len bytes is valid: no walk needed. */
	if (mpr_flat_span(buf, len) == len)
		return IPCHUB_OK;
	if (mpr_validate(buf, len, IPCHUB_MAX_BODY_DEPTH) != MPR_OK)
		return IPCHUB_E_BAD_BODY;
	return IPCHUB_OK;
}

int ipchub_body_unpack(const void *buf, size_t len, msgpack_unpacked *out)
{
	size_t off = 0;

	if (!out)
		return IPCHUB_E_INVALID;
	if (ipchub_body_check(buf, len) != IPCHUB_OK)
		return IPCHUB_E_BAD_BODY;
	switch (msgpack_unpack_next(out, buf, len, &off)) {
	case MSGPACK_UNPACK_SUCCESS:
		return off == len ? IPCHUB_OK : IPCHUB_E_BAD_BODY;
	case MSGPACK_UNPACK_NOMEM_ERROR:
		return IPCHUB_E_NOMEM;
	default:
		/* Unreachable after validation; refuse rather than trust. */
		return IPCHUB_E_BAD_BODY;
	}
}

int ipchub_msg_unpack(const ipchub_msg *m, msgpack_unpacked *out)
{
	if (!m)
		return IPCHUB_E_INVALID;
	return ipchub_body_unpack(m->body, m->body_len, out);
}

const char *ipchub_msg_topic(const ipchub_msg *m)
{
	return m->kind == IPCHUB_KIND_PUBLISH ? m->topic : NULL;
}

uint64_t ipchub_msg_sub(const ipchub_msg *m)
{
	return (m->kind == IPCHUB_KIND_PUBLISH || m->kind == IPCHUB_KIND_GAP ||
		m->kind == IPCHUB_KIND_MONITOR) ? m->sub : 0;
}

uint64_t ipchub_msg_gap_count(const ipchub_msg *m)
{
	return m->kind == IPCHUB_KIND_GAP ? m->count : 0;
}

const char *ipchub_msg_presence_name(const ipchub_msg *m)
{
	return m->kind == IPCHUB_KIND_PRESENCE ? m->name : NULL;
}

int ipchub_msg_presence_event(const ipchub_msg *m)
{
	return m->kind == IPCHUB_KIND_PRESENCE ? (int)m->event : 0;
}

int ipchub_msg_presence_reason(const ipchub_msg *m)
{
	return m->kind == IPCHUB_KIND_PRESENCE ? (int)m->reason : 0;
}

uint64_t ipchub_msg_presence_owner(const ipchub_msg *m)
{
	return m->kind == IPCHUB_KIND_PRESENCE ? m->conn : 0;
}

int ipchub_msg_monitor_frame(const ipchub_msg *m, const void **frame,
			     size_t *len, uint64_t *conn, uint64_t *full_len)
{
	const uint8_t *b = m->body;
	size_t n = m->body_len, hl, dl;

	if (m->kind != IPCHUB_KIND_MONITOR || !b || n < 2)
		return 0;
	/* The body is one msgpack value (the session validated it); a copy
	 * is always a bin. */
	switch (b[0]) {
	case 0xc4:
		hl = 2;
		dl = b[1];
		break;
	case 0xc5:
		if (n < 3)
			return 0;
		hl = 3;
		dl = (size_t)b[1] << 8 | b[2];
		break;
	case 0xc6:
		if (n < 5)
			return 0;
		hl = 5;
		dl = (size_t)b[1] << 24 | (size_t)b[2] << 16 |
		     (size_t)b[3] << 8 | b[4];
		break;
	default:
		return 0;
	}
	if (hl + dl != n)
		return 0;
	*frame = b + hl;
	*len = dl;
	if (conn)
		*conn = m->conn;
	if (full_len)
		*full_len = m->count;
	return (int)m->event;
}
