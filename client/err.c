/*
 * err.c - names and descriptions of ipchub_code values.
 *
 * Model: protocol codes (1..63) are the wire's own numbers, so their names
 * and texts come from the frame codec's table and cannot drift from the
 * broker's; the static assertions below pin the public enum to wire.h.
 * Local codes (64 and up) are described here. All strings are static.
 */
#include "frame.h"
#include "ipchub.h"
#include "wire.h"

#define SAME(x) _Static_assert((int)IPCHUB_E_##x == (int)WIRE_E_##x, #x)
_Static_assert((int)IPCHUB_OK == (int)WIRE_E_OK, "OK");
SAME(BAD_FRAME);
SAME(TOO_LARGE);
SAME(UNSUPPORTED_VERSION);
SAME(PROTOCOL);
SAME(BAD_NAME);
SAME(NAME_TAKEN);
SAME(NOT_OWNER);
SAME(NO_SUCH_PEER);
SAME(PEER_GONE);
SAME(TIMEOUT);
SAME(QUEUE_FULL);
SAME(LIMIT);
SAME(NOT_AUTHORIZED);
SAME(AUTH_FAILED);
SAME(NO_SUCH_REQUEST);
SAME(REMOTE_ERROR);
SAME(CANCELLED);
SAME(SHUTTING_DOWN);
SAME(INTERNAL);
SAME(BAD_BODY);
SAME(BAD_FILTER);
SAME(FDS_UNSUPPORTED);
SAME(MEMFD_UNSEALED);
SAME(MEMFD_SIZE);
SAME(MEMFD_INLINE);
_Static_assert((int)WIRE_E_CODE_MAX_ <= (int)IPCHUB_E_IO,
	       "protocol codes must stay below the local ones");
#undef SAME

static const struct {
	const char *name;
	const char *text;
} local_codes[] = {
	[IPCHUB_E_IO - IPCHUB_E_IO] = {"IO", "A socket error occurred; the connection is unusable."},
	[IPCHUB_E_CLOSED - IPCHUB_E_IO] = {"CLOSED", "The broker closed the connection."},
	[IPCHUB_E_NOMEM - IPCHUB_E_IO] = {"NOMEM", "Out of memory."},
	[IPCHUB_E_INVALID - IPCHUB_E_IO] = {"INVALID", "An argument is invalid."},
	[IPCHUB_E_WOULD_BLOCK - IPCHUB_E_IO] = {"WOULD_BLOCK", "The outbound queue is full."},
	[IPCHUB_E_NO_BROKER - IPCHUB_E_IO] = {"NO_BROKER", "No broker is listening at the socket path."},
	[IPCHUB_E_INTERRUPTED - IPCHUB_E_IO] = {"INTERRUPTED", "A signal interrupted the wait."},
	[IPCHUB_E_BAD_KEY - IPCHUB_E_IO] = {"BAD_KEY", "The key file is missing, malformed, or accessible by group or others."},
	[IPCHUB_E_WRONG_THREAD - IPCHUB_E_IO] = {"WRONG_THREAD", "The handle belongs to another thread."},
};

#define N_LOCAL (sizeof(local_codes) / sizeof(local_codes[0]))

const char *ipchub_code_name(int code)
{
	if (code >= 0 && code < WIRE_E_CODE_MAX_)
		return frame_code_name(code);
	if (code >= IPCHUB_E_IO && (unsigned)(code - IPCHUB_E_IO) < N_LOCAL)
		return local_codes[code - IPCHUB_E_IO].name;
	return "UNKNOWN";
}

const char *ipchub_strerror(int code)
{
	if (code >= 0 && code < WIRE_E_CODE_MAX_)
		return frame_code_text(code);
	if (code >= IPCHUB_E_IO && (unsigned)(code - IPCHUB_E_IO) < N_LOCAL)
		return local_codes[code - IPCHUB_E_IO].text;
	return "Unknown error code.";
}
