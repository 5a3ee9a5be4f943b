/*
 * fuzz_broker.c - libFuzzer targets for the broker's whole input path:
 * arbitrary bytes written into a real struct conn of an in-process broker
 * (ipchubd_core), its event loop run until idle.
 *
 * Model: one broker per process, created on first use, listening on an
 * abstract socket nobody connects to. Each input gets fresh connections:
 * socketpairs whose broker end is handed to the listener's accept
 * callback (lis.cb - the very entry point accept4() feeds, so the conn is
 * created, registered and timed exactly as for a real client; no test hook
 * in conn.c is needed). Two modes, one source:
 *  - fuzz_handshake (FUZZ_HANDSHAKE defined): the input is the first bytes
 *    a client ever sends - whatever the broker's pre-handshake path is
 *    (HELLO today; AUTH when authentication lands) sees them raw;
 *  - fuzz_broker: connection A has done HELLO and registered "client-1",
 *    then the input follows; connection B ("svc.echo", the destination of
 *    the committed frame samples) reads whatever is routed to it. B's
 *    HELLO announces BATCH and A's does not, so a batch to "svc.echo" is
 *    forwarded whole and one to "client-1" is split (PROTOCOL.md 6.3.1).
 * The input is written in two pieces cut at a point derived from its
 * bytes, with the loop run in between, so frames straddle reads. Our ends
 * are drained as the loop runs. At the end both ends are closed and the
 * loop runs until the broker holds no connection; then the broker must be
 * back to empty: no connection, no name, no pending request, nothing
 * registered - anything left over is a leak and aborts. State therefore
 * never carries from one input to the next.
 *
 * Descriptors (fuzz_broker only, PROTOCOL.md 6.8): each whole frame of
 * the input that claims descriptors (key fds) is written with a
 * sendmsg() that attaches copies of one /dev/null descriptor to its first
 * byte - as many as claimed, or, as the input's hash picks, none, one
 * fewer or one more - so the broker's claim, quota, routing and refusal
 * paths run on fuzzed frames. svc.echo announces FDS (and reads with
 * read(), so the kernel closes what it is passed); client-1 does not.
 * Small quotas make LIMIT and parking reachable. After each input the
 * broker must hold no descriptor in flight and the process no more open
 * files than before it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker.h"
#include "frame.h"

#define FUZZ_CHECK(cond)                                                         \
	do {                                                                     \
		if (!(cond)) {                                                   \
			fprintf(stderr, "fuzz_broker: check failed: %s (%s:%d)\n", \
				#cond, __FILE__, __LINE__);                      \
			abort();                                                 \
		}                                                                \
	} while (0)

/* Loop passes per pump; rounds of pumping before the broker must be idle
 * (each round drains what it wrote to us, so progress is guaranteed). */
#define FUZZ_PASSES 8
#define FUZZ_MAX_ROUNDS 10000

static struct broker *g_b;

static void setup_once(void)
{
	static char path[64];
	struct broker_conf conf;
	char err[256];

	if (g_b)
		return;
	signal(SIGPIPE, SIG_IGN);
	snprintf(path, sizeof(path), "@ipchub-fuzz-%ld", (long)getpid());
	conf_defaults(&conf);
	conf.socket_path = path;
	conf.log_level = LOG_LVL_ERROR;
	/* Small limits make the edges reachable with small inputs. */
	conf.queue_hwm = IPCHUB_QUEUE_HWM_MIN;
	conf.max_frame = IPCHUB_MAX_FRAME_MIN;
	conf.max_names = 4;
	conf.max_pending = 4;
	conf.max_fds_per_conn = IPCHUB_MAX_FDS_PER_FRAME;
	conf.max_fds_total = IPCHUB_MAX_FDS_PER_FRAME + 8;
	g_b = broker_new(&conf, err, sizeof(err));
	if (!g_b) {
		fprintf(stderr, "fuzz_broker: broker_new: %s\n", err);
		abort();
	}
}

/* Returns our end of a socketpair whose other end is now a broker conn. */
static int adopt(void)
{
	struct xport_cred cred = { .pid = getpid(), .uid = getuid(), .gid = getgid() };
	int sv[2];

	FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
			      0, sv) == 0);
	g_b->lis.cb(g_b->lis.arg, sv[1], &cred);
	return sv[0];
}

static size_t drain(int fd)
{
	uint8_t buf[65536];
	size_t total = 0;
	ssize_t n;

	if (fd < 0)
		return 0;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		total += (size_t)n;
	return total;
}

static void pump(int fa, int fb)
{
	for (int round = 0; round < FUZZ_MAX_ROUNDS; round++) {
		size_t got;

		for (int i = 0; i < FUZZ_PASSES; i++)
			event_base_loop(broker_base(g_b), EVLOOP_NONBLOCK);
		got = drain(fa) + drain(fb);
		if (got == 0)
			return;
	}
}

static void write_all(int fd, int other, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w > 0) {
			p += w;
			n -= (size_t)w;
			continue;
		}
		if (w < 0 && errno != EAGAIN && errno != EINTR)
			return; /* the broker closed on us: fine */
		pump(fd, other);
	}
}

#ifndef FUZZ_HANDSHAKE
static int g_null = -1; /* the descriptor passed along, copied each time */

/* How many descriptors go with a frame that claims n: as many in five
 * inputs out of eight (the mode comes from the input's hash). */
enum fds_mode { FDS_NONE, FDS_FEWER, FDS_MORE, FDS_EXACT };

static uint32_t fds_for(enum fds_mode mode, uint32_t n)
{
	switch (mode) {
	case FDS_NONE: return 0;
	case FDS_FEWER: return n - 1;
	case FDS_MORE: return n + 1;
	default: return n;
	}
}

/* p[0..n) with nfds copies of g_null attached to its first byte; what
 * sendmsg() does not take goes as plain bytes. */
static void write_fds(int fd, int other, const uint8_t *p, size_t n,
		      uint32_t nfds)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE((IPCHUB_MAX_FDS_PER_FRAME + 1) * sizeof(int))];
	} ctl;
	int fds[IPCHUB_MAX_FDS_PER_FRAME + 1];
	struct iovec iov = { (void *)p, n };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *cm;
	ssize_t w;

	if (nfds == 0 || n == 0) {
		write_all(fd, other, p, n);
		return;
	}
	for (uint32_t i = 0; i < nfds; i++)
		fds[i] = g_null;
	memset(&ctl, 0, sizeof(ctl));
	mh.msg_control = ctl.buf;
	mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(nfds * sizeof(int));
	memcpy(CMSG_DATA(cm), fds, nfds * sizeof(int));
	while ((w = sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT)) < 0 &&
	       (errno == EAGAIN || errno == EINTR))
		pump(fd, other);
	if (w < 0)
		return; /* the broker closed on us: fine */
	write_all(fd, other, p + w, n - (size_t)w);
}

/* data[from..to) with nfds descriptors, the loop run once the first cut
 * bytes of the input are out. */
static void write_segment(int fd, int other, const uint8_t *data, size_t from,
			  size_t to, uint32_t nfds, size_t cut)
{
	if (from < cut && cut < to) {
		write_fds(fd, other, data + from, cut - from, nfds);
		pump(fd, other);
		write_all(fd, other, data + cut, to - cut);
		return;
	}
	write_fds(fd, other, data + from, to - from, nfds);
	if (to == cut)
		pump(fd, other);
}

/* Write data[0..n) to fd, running the loop once the first cut bytes are
 * out; each whole frame that claims descriptors, up to the first frame
 * that does not decode, gets them (see the top). */
static void write_input(int fd, int other, const uint8_t *data, size_t n,
			size_t cut, enum fds_mode mode)
{
	size_t done = 0, at = 0;

	while (done < n) {
		size_t start = n, end = n;
		uint32_t nfds = 0;

		while (at + IPCHUB_LEN_PREFIX <= n) {
			uint32_t len = frame_get_len(data + at);
			struct frame_hdr h;
			struct iovec iov;
			struct mpr r;
			bool body;

			if (len > n - at - IPCHUB_LEN_PREFIX)
				break;
			mpr_init_buf(&r, &iov, data + at + IPCHUB_LEN_PREFIX, len);
			if (frame_decode(&r, FRAME_C2B, &h, &body, NULL) != WIRE_E_OK)
				break; /* fatal for the broker: the rest is bytes */
			if (h.has & FH(WK_FDS)) {
				start = at;
				end = at + IPCHUB_LEN_PREFIX + (size_t)len;
				nfds = fds_for(mode, h.fds);
				at = end;
				break;
			}
			at += IPCHUB_LEN_PREFIX + (size_t)len;
		}
		if (done < start)
			write_segment(fd, other, data, done, start, 0, cut);
		if (start < n)
			write_segment(fd, other, data, start, end, nfds, cut);
		done = end;
	}
}

static int open_files(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	FUZZ_CHECK(d != NULL);
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static void send_hdr(int fd, const struct frame_hdr *h)
{
	uint8_t out[FRAME_ENC_MAX];
	size_t n = frame_encode(h, 0, out, sizeof(out));

	write_all(fd, -1, out, n);
}

static void hello_register(int fd, const char *name, uint32_t flags)
{
	struct frame_hdr h;

	frame_init(&h, WIRE_HELLO);
	h.ver = IPCHUB_PROTO_VERSION_MAX;
	h.ver_min = IPCHUB_PROTO_VERSION_MIN;
	h.has |= FH(WK_VER) | FH(WK_VER_MIN);
	if (flags) {
		h.flags = flags;
		h.has |= FH(WK_FLAGS);
	}
	send_hdr(fd, &h);
	frame_init(&h, WIRE_REGISTER);
	h.id = 1;
	h.has |= FH(WK_ID);
	frame_set_str(&h, WK_NAME, name, strlen(name));
	send_hdr(fd, &h);
}
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t salt = 2166136261u;
	size_t cut;
	int fa, fb;

	setup_once();
	for (size_t k = 0; k < size && k < 64; k++)
		salt = (salt ^ data[k]) * 16777619u;
	cut = size ? salt % (size + 1) : 0;

#ifndef FUZZ_HANDSHAKE
	if (g_null < 0)
		FUZZ_CHECK((g_null = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0);
	int files = open_files();
#endif
	fb = adopt();
	fa = adopt();
#ifndef FUZZ_HANDSHAKE
	hello_register(fb, "svc.echo", WF_BATCH | WF_FDS);
	hello_register(fa, "client-1", 0);
#else
	{
		/* B completes its handshake, so A can reach it once past its
		 * own; A's bytes are all from the input. */
		static const uint8_t hello[] = { 0, 0, 0, 7, 0x83, 0x00, 0x01,
						 0x09, 0x01, 0x0a, 0x01 };
		write_all(fb, -1, hello, sizeof(hello));
	}
#endif
	pump(fa, fb);
#ifndef FUZZ_HANDSHAKE
	{
		uint32_t m = (salt >> 8) & 7;

		write_input(fa, fb, data, size, cut,
			    m < FDS_EXACT ? (enum fds_mode)m : FDS_EXACT);
	}
#else
	write_all(fa, fb, data, cut);
	pump(fa, fb);
	write_all(fa, fb, data + cut, size - cut);
#endif
	pump(fa, fb);

	close(fa);
	close(fb);
	for (int round = 0; round < FUZZ_MAX_ROUNDS && g_b->nconns > 0; round++)
		event_base_loop(broker_base(g_b), EVLOOP_NONBLOCK);
	/* Once more for the reaper. */
	event_base_loop(broker_base(g_b), EVLOOP_NONBLOCK);
	FUZZ_CHECK(g_b->nconns == 0);
	FUZZ_CHECK(TAILQ_EMPTY(&g_b->all));
	FUZZ_CHECK(TAILQ_EMPTY(&g_b->dead));
	FUZZ_CHECK(TAILQ_EMPTY(&g_b->flush));
	FUZZ_CHECK(htab_len(&g_b->conns) == 0);
	FUZZ_CHECK(htab_len(&g_b->names.tab) == 0);
	FUZZ_CHECK(pending_count(&g_b->pending) == 0);
	FUZZ_CHECK(g_b->st.fds_in_flight == 0);
#ifndef FUZZ_HANDSHAKE
	FUZZ_CHECK(open_files() == files);
#endif
	return 0;
}
