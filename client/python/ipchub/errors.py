"""errors - the closed set of ipchub error codes and the IpchubError classes.

Wire codes 0..21 are PROTOCOL.md section 7; local codes 64.. never appear on
the wire and share their numbers with the C library (client/ipchub.h) and the
Node client. Every error this package raises is an IpchubError whose `.code`
is the upper-case name ('NO_SUCH_PEER') and `.code_number` the number (8);
each code also has its own subclass (errors.NO_SUCH_PEER), so callers can
`except ipchub.errors.TIMEOUT`.
"""

WIRE_CODES = {
    "OK": 0, "BAD_FRAME": 1, "TOO_LARGE": 2, "UNSUPPORTED_VERSION": 3, "PROTOCOL": 4,
    "BAD_NAME": 5, "NAME_TAKEN": 6, "NOT_OWNER": 7, "NO_SUCH_PEER": 8, "PEER_GONE": 9,
    "TIMEOUT": 10, "QUEUE_FULL": 11, "LIMIT": 12, "NOT_AUTHORIZED": 13, "AUTH_FAILED": 14,
    "NO_SUCH_REQUEST": 15, "REMOTE_ERROR": 16, "CANCELLED": 17, "SHUTTING_DOWN": 18,
    "INTERNAL": 19, "BAD_BODY": 20, "BAD_FILTER": 21,
}
LOCAL_CODES = {
    "IO": 64,            # socket error or connection lost; the operation's fate is unknown
    "CLOSED": 65,        # the hub was closed
    "NOMEM": 66,         # parity with the C library; not produced here
    "INVALID": 67,       # bad argument from the caller
    "WOULD_BLOCK": 68,   # parity with the C library; not produced here
    "NO_BROKER": 69,     # nothing listens at the socket path
    "INTERRUPTED": 70,   # parity with the C library; not produced here
    "BAD_KEY": 71,       # key file missing, malformed, a symlink, not ours or group/other-readable
    "WRONG_THREAD": 72,  # parity with the C library; not produced here
}
CODES = {**WIRE_CODES, **LOCAL_CODES}
NAMES = {v: k for k, v in CODES.items()}
# Codes after which the broker closes the connection (section 7).
FATAL = frozenset((1, 2, 3, 4, 14))


def code_name(num):
    """Name of a numeric code; an unknown number becomes 'UNKNOWN'."""
    return NAMES.get(num, "UNKNOWN")


class IpchubError(Exception):
    """An ipchub failure. `code` (str), `code_number` (int), plus optional
    `id` (the frame id it answers), `to`, `name` (the name concerned)."""

    code = "UNKNOWN"
    code_number = -1

    def __init__(self, message=None, id=None, to=None, name=None):
        super().__init__(message or self.code)
        self.id = id
        self.to = to
        self.name = name

    def __repr__(self):
        return "%s(%r, id=%r)" % (type(self).__name__, str(self), self.id)


_CLASSES = {}
for _name, _num in CODES.items():
    _cls = type(_name, (IpchubError,), {"code": _name, "code_number": _num})
    _CLASSES[_num] = _cls
    globals()[_name] = _cls
del _name, _num, _cls


def make(code, message=None, **kw):
    """An IpchubError of the class for `code` (a number or a name); an
    unknown wire number gives a plain IpchubError with code 'UNKNOWN'."""
    if isinstance(code, str):
        code = CODES[code]
    cls = _CLASSES.get(code)
    if cls is None:
        e = IpchubError(message or "unknown error code %d" % code, **kw)
        e.code_number = code
        return e
    return cls(message, **kw)
