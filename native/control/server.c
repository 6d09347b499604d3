/*
 * The control server: other processes of the same user run syscalls in
 * this process's kernel over a Unix socket (protocol.h; the API is
 * <lkl/control.h>).
 *
 * One host thread accepts; each client has its own thread, so a client
 * that blocks in a call (a recvmsg) holds up only itself, and the
 * serving process's own threads never wait for a client.  A client may
 * only name kernel fds it opened itself; they are closed when it goes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <lkl/lkl.h>
#include <lkl/asm/unistd.h>
#include <lkl/capture.h>
#include <lkl/control.h>
#include <lkl/netdev.h>
#include <lkl/linux/poll.h>
#include <lkl/linux/socket_abi.h>
#include <lkl/linux/time_types.h>
#include <lkl/linux/uio.h>

#include "protocol.h"

#define MAX_CLIENTS	16
#define MAX_CLIENT_FDS	256
#define MAX_CAPTURES	4
#define MAX_NETDEVS	32
#define BODY_TIMEOUT_MS	10000	/* a started message must finish by then */

#define STAT_ADD(field, n) __atomic_fetch_add(&stats.field, (n), __ATOMIC_RELAXED)

struct client {
	int sock;
	int slot;
	pthread_t thread;
	int done;			/* the thread has finished */
	int fds[MAX_CLIENT_FDS];	/* kernel fds it opened */
	int nfds;
	struct lkl_capture *captures[MAX_CAPTURES];
	int passed_fd;			/* from SCM_RIGHTS, for a capture */
	struct ctl_request req;
	uint8_t *in;			/* request data */
	uint8_t *out;			/* reply data */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct client *clients[MAX_CLIENTS];
static struct lkl_netdev *netdevs[MAX_NETDEVS];
static struct lkl_control_stats stats;
static pthread_t acceptor;
static int serving, listen_fd = -1, stop_fd = -1;
static char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
static char served_name[65];
static time_t started;

static long ksys(long nr, long a, long b, long c, long d, long e, long f)
{
	long p[6] = { a, b, c, d, e, f };

	return lkl_syscall(nr, p);
}

/* ---- where the sockets live ---------------------------------------- */

int lkl_control_dir(char *buf, size_t len)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	int n;

	if (xdg && xdg[0] == '/')
		n = snprintf(buf, len, "%s/lkl", xdg);
	else if (geteuid() == 0)
		n = snprintf(buf, len, "/run/lkl");
	else
		n = snprintf(buf, len, "/tmp/lkl-%u", (unsigned int)geteuid());
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int valid_name(const char *name)
{
	size_t i, n = strlen(name);

	if (n == 0 || n > 64 || name[0] == '.')
		return 0;
	for (i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

/* A directory of ours, mode 0700 (an existing one must be ours, not open). */
static int make_dir(const char *dir)
{
	struct stat st;

	if (mkdir(dir, 0700) && errno != EEXIST)
		return -errno;
	if (lstat(dir, &st))
		return -errno;
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & 0077))
		return -EPERM;
	return 0;
}

/* 1 if a live server answers at path. */
static int alive(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, ok;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

/* ---- the client's fd table -------------------------------------------- */

static int owns(struct client *c, long fd)
{
	int i;

	for (i = 0; i < c->nfds; i++)
		if (c->fds[i] == fd)
			return 1;
	return 0;
}

static long adopt(struct client *c, long fd)
{
	if (fd < 0)
		return fd;
	if (c->nfds == MAX_CLIENT_FDS) {
		ksys(LKL__NR_close, fd, 0, 0, 0, 0, 0);
		return -EMFILE;
	}
	c->fds[c->nfds++] = fd;
	STAT_ADD(open_fds, 1);
	return fd;
}

static long forget(struct client *c, long fd)
{
	int i;

	for (i = 0; i < c->nfds; i++) {
		if (c->fds[i] == fd) {
			c->fds[i] = c->fds[--c->nfds];
			__atomic_fetch_sub(&stats.open_fds, 1, __ATOMIC_RELAXED);
			return ksys(LKL__NR_close, fd, 0, 0, 0, 0, 0);
		}
	}
	return -EBADF;
}

/* ---- captures ----------------------------------------------------------- */

static struct lkl_netdev *netdev_by_name(const char *ifname)
{
	struct { char name[16]; int ifindex; char pad[20]; } ifr;
	struct lkl_netdev *dev = NULL;
	long fd, r;
	int i;

	memset(&ifr, 0, sizeof(ifr));
	strncpy(ifr.name, ifname, sizeof(ifr.name) - 1);
	fd = ksys(LKL__NR_socket, 2 /* AF_INET */, 2 /* SOCK_DGRAM */, 0,
		  0, 0, 0);
	if (fd < 0)
		return NULL;
	r = ksys(LKL__NR_ioctl, fd, 0x8933 /* SIOCGIFINDEX */, (long)&ifr,
		 0, 0, 0);
	ksys(LKL__NR_close, fd, 0, 0, 0, 0, 0);
	if (r < 0)
		return NULL;
	pthread_mutex_lock(&lock);
	for (i = 0; i < MAX_NETDEVS; i++)
		if (netdevs[i] && lkl_netdev_ifindex(netdevs[i]) == ifr.ifindex)
			dev = netdevs[i];
	pthread_mutex_unlock(&lock);
	return dev;
}

static long capture_start(struct client *c, const char *ifname,
			  long snaplen, long count)
{
	struct lkl_netdev *dev;
	int i, slot = -1;
	long r;

	if (c->passed_fd < 0)
		return -EBADF;
	for (i = 0; i < MAX_CAPTURES; i++)
		if (!c->captures[i]) {
			slot = i;
			break;
		}
	if (slot < 0)
		return -EMFILE;
	if (snaplen < 0 || snaplen > 262144 || count < 0)
		return -EINVAL;
	dev = netdev_by_name(ifname);
	if (!dev)
		return -ENODEV;
	r = lkl_capture_start(dev, c->passed_fd, snaplen, count, 0,
			      &c->captures[slot]);
	if (r < 0)
		return r;
	c->passed_fd = -1;	/* the capture owns it */
	return slot;
}

static struct lkl_capture *capture_get(struct client *c, long id)
{
	return id >= 0 && id < MAX_CAPTURES ? c->captures[id] : NULL;
}

/* ---- waiting in the kernel ------------------------------------------------ */

#define WAIT_SLICE_MS	250

/* The client hung up, or the server stops: a wait on its behalf is over. */
static int abandoned(struct client *c)
{
	struct pollfd pf[2] = {
		{ .fd = c->sock, .events = POLLRDHUP },
		{ .fd = stop_fd, .events = POLLIN },
	};

	return poll(pf, 2, 0) > 0 &&
		((pf[0].revents & (POLLRDHUP | POLLHUP | POLLERR)) || pf[1].revents);
}

/*
 * ppoll in the kernel in short slices, so that a client that hangs up or
 * a stopping server never leaves this thread blocked in the kernel for
 * long.  Returns ppoll's result, or -ECANCELED.
 */
static long kernel_poll(struct client *c, struct lkl_pollfd *kp, size_t n,
			long ms)
{
	for (;;) {
		long slice = ms < WAIT_SLICE_MS ? ms : WAIT_SLICE_MS, r;
		struct lkl__kernel_timespec ts = {
			.tv_sec = slice / 1000,
			.tv_nsec = (slice % 1000) * 1000000L,
		};

		r = ksys(LKL__NR_ppoll, (long)kp, n, (long)&ts, 0, 0, 0);
		if (r != 0 || ms <= slice)
			return r;
		ms -= slice;
		if (abandoned(c))
			return -ECANCELED;
	}
}

/*
 * connect, waiting in slices as well: the socket is made non-blocking
 * for the call, and an in-progress connect is waited for with
 * kernel_poll.  nonblock: the client's socket is non-blocking (EINPROGRESS
 * is its answer).
 */
static long connect_sliced(struct client *c, long fd, size_t len, long nonblock)
{
	long fl = ksys(LKL__NR_fcntl, fd, 3 /* F_GETFL */, 0, 0, 0, 0), r;
	struct lkl_pollfd kp = { .fd = fd, .events = 4 /* POLLOUT */ };
	int err = 0, elen = sizeof(err);

	if (fl < 0)
		return fl;
	ksys(LKL__NR_fcntl, fd, 4 /* F_SETFL */, fl | 04000 /* O_NONBLOCK */, 0, 0, 0);
	r = ksys(LKL__NR_connect, fd, (long)c->in, len, 0, 0, 0);
	if (r == -EINPROGRESS && !nonblock) {
		r = kernel_poll(c, &kp, 1, LONG_MAX);
		if (r >= 0) {
			r = ksys(LKL__NR_getsockopt, fd, 1 /* SOL_SOCKET */,
				 4 /* SO_ERROR */, (long)&err, (long)&elen, 0);
			if (r == 0)
				r = -err;
		}
	}
	ksys(LKL__NR_fcntl, fd, 4 /* F_SETFL */, fl, 0, 0, 0);
	return r;
}

/* ---- one request -------------------------------------------------------- */

/* NUL-terminated data of at most max bytes, or NULL. */
static const char *data_string(struct client *c, size_t max)
{
	size_t n = c->req.len;

	if (n == 0 || n > max || c->in[n - 1] != 0 || strlen((char *)c->in) + 1 != n)
		return NULL;
	return (const char *)c->in;
}

/*
 * Run c->req; fill rep and c->out (its length in *outlen).  Returns 0,
 * or -EPROTO for a request that is malformed (counted; answered with
 * -EINVAL).
 */
static int serve(struct client *c, struct ctl_reply *rep, size_t *outlen)
{
	const struct ctl_request *q = &c->req;
	const int64_t *a = q->arg;
	long fd = a[0], r = -ENOSYS;
	const char *s;

	*outlen = 0;
	switch (q->op) {
	case CTL_HELLO:
		r = 0;
		rep->ret[0] = getpid();
		rep->ret[1] = started;
		rep->ret[2] = CTL_VERSION;
		*outlen = strlen(served_name) + 1;
		memcpy(c->out, served_name, *outlen);
		break;
	case CTL_SOCKET:
		r = adopt(c, ksys(LKL__NR_socket, a[0], a[1] | 02000000, a[2],
				  0, 0, 0));
		break;
	case CTL_OPEN:
		s = data_string(c, 4096);
		if (!s || s[0] != '/')
			return -EPROTO;
		r = adopt(c, ksys(LKL__NR_openat, -100, (long)s,
				  a[0] | 02000000, a[1], 0, 0));
		break;
	case CTL_CLOSE:
		r = forget(c, fd);
		break;
	case CTL_STAT:
		s = data_string(c, 4096);
		if (!s || s[0] != '/')
			return -EPROTO;
		r = ksys(LKL__NR_statx, -100, (long)s, a[0] & 0x100, 0x7ff,
			 (long)c->out, 0);
		if (r == 0)
			*outlen = 256;	/* struct statx */
		break;
	case CTL_STATS:
		r = 0;
		rep->ret[0] = __atomic_load_n(&stats.requests, __ATOMIC_RELAXED);
		rep->ret[1] = __atomic_load_n(&stats.malformed, __ATOMIC_RELAXED);
		rep->ret[2] = __atomic_load_n(&stats.clients, __ATOMIC_RELAXED);
		r = __atomic_load_n(&stats.open_fds, __ATOMIC_RELAXED);
		break;
	case CTL_CAPTURE_START:
		s = data_string(c, 16);
		if (!s)
			return -EPROTO;
		r = capture_start(c, s, a[0], a[1]);
		break;
	case CTL_CAPTURE_STATUS:
	case CTL_CAPTURE_STOP: {
		struct lkl_capture *cap = capture_get(c, a[0]);
		struct lkl_capture_stats st;

		if (!cap) {
			r = -ENOENT;
			break;
		}
		lkl_capture_get_stats(cap, &st);
		rep->ret[0] = st.frames;
		rep->ret[1] = st.dropped;
		rep->ret[2] = st.done;
		r = 0;
		if (q->op == CTL_CAPTURE_STOP) {
			c->captures[a[0]] = NULL;
			r = lkl_capture_stop(cap, &st);
			rep->ret[0] = st.frames;
			rep->ret[1] = st.dropped;
		}
		break;
	}
	default:
		if (q->op >= CTL_OP_MAX || q->op == 0)
			return -EPROTO;
		/* Everything below names a kernel fd of this client (poll: in its data). */
		if (q->op != CTL_POLL && !owns(c, fd)) {
			r = -EBADF;
			break;
		}
		/* A call that may block waits in slices first (kernel_poll). */
		if (q->op == CTL_READ || q->op == CTL_WRITE ||
		    ((q->op == CTL_SENDTO || q->op == CTL_RECVFROM) &&
		     !(a[1] & 0x40 /* MSG_DONTWAIT */))) {
			struct lkl_pollfd kp = {
				.fd = fd,
				.events = q->op == CTL_READ || q->op == CTL_RECVFROM ?
					1 /* POLLIN */ : 4 /* POLLOUT */,
			};

			r = kernel_poll(c, &kp, 1, LONG_MAX);
			if (r < 0)
				goto done;
		}
		switch (q->op) {
		case CTL_READ:
			if (a[1] < 0 || a[1] > CTL_MAX_DATA)
				return -EPROTO;
			r = ksys(LKL__NR_read, fd, (long)c->out, a[1], 0, 0, 0);
			if (r > 0)
				*outlen = r;
			break;
		case CTL_WRITE:
			r = ksys(LKL__NR_write, fd, (long)c->in, q->len, 0, 0, 0);
			break;
		case CTL_LSEEK:
			r = ksys(LKL__NR_lseek, fd, a[1], a[2], 0, 0, 0);
			break;
		case CTL_GETDENTS:
			if (a[1] < 0 || a[1] > CTL_MAX_DATA)
				return -EPROTO;
			r = ksys(LKL__NR_getdents64, fd, (long)c->out, a[1],
				 0, 0, 0);
			if (r > 0)
				*outlen = r;
			break;
		case CTL_SENDTO:
			if (a[2] < 0 || a[2] > CTL_ADDR_MAX || a[2] > q->len)
				return -EPROTO;
			r = ksys(LKL__NR_sendto, fd, (long)(c->in + a[2]),
				 q->len - a[2], a[1], a[2] ? (long)c->in : 0, a[2]);
			break;
		case CTL_RECVFROM: {
			uint8_t name[CTL_ADDR_MAX];
			struct lkl_iovec iov;
			struct lkl_user_msghdr m;
			size_t alen, dlen;

			if (a[2] < 0 || a[2] > CTL_MAX_DATA - CTL_ADDR_MAX ||
			    a[3] < 0 || a[3] > CTL_ADDR_MAX)
				return -EPROTO;
			memset(&m, 0, sizeof(m));
			iov.iov_base = c->out + a[3];
			iov.iov_len = a[2];
			m.msg_name = a[3] ? name : NULL;
			m.msg_namelen = a[3];
			m.msg_iov = &iov;
			m.msg_iovlen = 1;
			r = ksys(LKL__NR_recvmsg, fd, (long)&m, a[1], 0, 0, 0);
			if (r < 0)
				break;
			alen = m.msg_namelen < a[3] ? m.msg_namelen : a[3];
			memset(c->out, 0, a[3]);
			memcpy(c->out, name, alen);
			dlen = (size_t)r < (size_t)a[2] ? (size_t)r : (size_t)a[2];
			/* The payload sits right after the address cap. */
			*outlen = a[3] + dlen;
			rep->ret[0] = m.msg_namelen;
			rep->ret[1] = m.msg_flags;
			break;
		}
		case CTL_RECVBATCH: {
			size_t off = 0;
			long n = 0, max = a[2];

			if (max <= 0 || max > 1024)
				return -EPROTO;
			/* The first waits as asked; the rest are what is queued. */
			while (n < max) {
				uint8_t name[CTL_ADDR_MAX];
				struct ctl_dgram *d = (struct ctl_dgram *)(c->out + off);
				struct lkl_iovec iov;
				struct lkl_user_msghdr m;
				size_t room = CTL_MAX_DATA - off, need;
				long len;

				if (room < CTL_DGRAM_SPACE(CTL_ADDR_MAX, 0))
					break;
				memset(&m, 0, sizeof(m));
				iov.iov_base = NULL;
				iov.iov_len = 0;
				m.msg_iov = &iov;
				m.msg_iovlen = 1;
				len = ksys(LKL__NR_recvmsg, fd, (long)&m,
					   0x2 | 0x20 | 0x40 /* PEEK|TRUNC|DONTWAIT */,
					   0, 0, 0);
				if (len < 0 && n == 0 && len == -EAGAIN &&
				    !(a[1] & 0x40)) {
					struct lkl_pollfd kp = { .fd = fd, .events = 1 };

					len = kernel_poll(c, &kp, 1, LONG_MAX);
					if (len < 0) {
						r = len;
						goto done;
					}
					continue;
				}
				if (len < 0) {
					if (n == 0) {
						r = len;
						goto done;
					}
					break;
				}
				need = CTL_DGRAM_SPACE(CTL_ADDR_MAX, len);
				if (need > room)
					break;	/* the next reply takes it */
				memset(&m, 0, sizeof(m));
				iov.iov_base = (uint8_t *)(d + 1) + CTL_ADDR_MAX;
				iov.iov_len = len;
				m.msg_name = name;
				m.msg_namelen = CTL_ADDR_MAX;
				m.msg_iov = &iov;
				m.msg_iovlen = 1;
				len = ksys(LKL__NR_recvmsg, fd, (long)&m, 0x40, 0, 0, 0);
				if (len < 0)
					break;
				d->len = len;
				d->flags = m.msg_flags;
				d->namelen = m.msg_namelen < CTL_ADDR_MAX ?
					m.msg_namelen : CTL_ADDR_MAX;
				d->pad = 0;
				/* Close the gap between the name and the data. */
				memcpy(d + 1, name, d->namelen);
				memmove((uint8_t *)(d + 1) + d->namelen,
					(uint8_t *)(d + 1) + CTL_ADDR_MAX, len);
				off += CTL_DGRAM_SPACE(d->namelen, len);
				n++;
			}
			r = n;
			*outlen = off;
			break;
		}
		case CTL_BIND:
			if (q->len > CTL_ADDR_MAX)
				return -EPROTO;
			r = ksys(LKL__NR_bind, fd, (long)c->in, q->len, 0, 0, 0);
			break;
		case CTL_CONNECT:
			if (q->len > CTL_ADDR_MAX)
				return -EPROTO;
			r = connect_sliced(c, fd, q->len, a[1]);
			break;
		case CTL_GETSOCKNAME: {
			int len = CTL_ADDR_MAX;

			if (a[1] < 0 || a[1] > CTL_ADDR_MAX)
				return -EPROTO;
			r = ksys(a[2] ? LKL__NR_getpeername : LKL__NR_getsockname,
				 fd, (long)c->out, (long)&len, 0, 0, 0);
			if (r == 0) {
				rep->ret[0] = len;
				*outlen = len < a[1] ? len : a[1];
			}
			break;
		}
		case CTL_SETSOCKOPT:
			if (q->len > 4096)
				return -EPROTO;
			r = ksys(LKL__NR_setsockopt, fd, a[1], a[2], (long)c->in,
				 q->len, 0);
			break;
		case CTL_GETSOCKOPT: {
			int len = a[3];

			if (a[3] < 0 || a[3] > 4096)
				return -EPROTO;
			r = ksys(LKL__NR_getsockopt, fd, a[1], a[2], (long)c->out,
				 (long)&len, 0);
			if (r == 0) {
				rep->ret[0] = len;
				*outlen = len < a[3] ? len : a[3];
			}
			break;
		}
		case CTL_IOCTL: {
			unsigned int size = ctl_ioctl_size(a[1]);

			if (size == 0) {
				r = -ENOTTY;
				break;
			}
			if (q->len != size)
				return -EPROTO;
			memcpy(c->out, c->in, size);
			r = ksys(LKL__NR_ioctl, fd, a[1], (long)c->out, 0, 0, 0);
			*outlen = size;
			break;
		}
		case CTL_ETHTOOL: {
			struct { char name[16]; void *data; char pad[16]; } ifr;
			size_t size;

			if (q->len < 16 + 4)
				return -EPROTO;
			size = ctl_ethtool_size(c->in + 16, q->len - 16);
			if (size == 0) {
				r = -EOPNOTSUPP;
				break;
			}
			if (q->len != 16 + size)
				return -EPROTO;
			memcpy(c->out, c->in, q->len);
			memset(&ifr, 0, sizeof(ifr));
			memcpy(ifr.name, c->in, 15);
			ifr.data = c->out + 16;
			r = ksys(LKL__NR_ioctl, fd, 0x8946 /* SIOCETHTOOL */,
				 (long)&ifr, 0, 0, 0);
			*outlen = q->len;
			break;
		}
		case CTL_POLL: {
			struct ctl_pollfd *p = (struct ctl_pollfd *)c->out;
			struct lkl_pollfd kp[CTL_POLL_MAX_FDS];
			size_t i, n = q->len / sizeof(*p);
			long ms = a[0];

			if (q->len % sizeof(*p) || n == 0 || n > CTL_POLL_MAX_FDS)
				return -EPROTO;
			memcpy(p, c->in, q->len);
			for (i = 0; i < n; i++) {
				if (!owns(c, p[i].fd))
					return -EPROTO;
				kp[i].fd = p[i].fd;
				kp[i].events = p[i].events;
				kp[i].revents = 0;
			}
			if (ms < 0 || ms > CTL_POLL_MAX_MS)
				ms = CTL_POLL_MAX_MS;
			r = kernel_poll(c, kp, n, ms);
			for (i = 0; i < n; i++)
				p[i].revents = kp[i].revents;
			*outlen = q->len;
			break;
		}
		default:
			return -EPROTO;
		}
	}
done:
	rep->result = r;
	return 0;
}

/* ---- the connection ----------------------------------------------------- */

/*
 * Read exactly n bytes (fds passed with them land in c->passed_fd).
 * timeout_ms < 0 waits for as long as it takes.  Returns 0, -EPIPE at
 * end of file (-EPROTO if it came mid-way), -ETIMEDOUT, -ECANCELED on
 * stop.
 */
static int read_full(struct client *c, void *buf, size_t n, int timeout_ms)
{
	size_t got = 0;

	while (got < n) {
		struct pollfd pf[2] = {
			{ .fd = c->sock, .events = POLLIN },
			{ .fd = stop_fd, .events = POLLIN },
		};
		union {
			struct cmsghdr h;
			char buf[CMSG_SPACE(sizeof(int) * 4)];
		} ctl;
		struct iovec iov = { (char *)buf + got, n - got };
		struct msghdr m = {
			.msg_iov = &iov, .msg_iovlen = 1,
			.msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf),
		};
		struct cmsghdr *cm;
		ssize_t r;
		int pr;

		pr = poll(pf, 2, timeout_ms);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr == 0)
			return -ETIMEDOUT;
		if (pf[1].revents)
			return -ECANCELED;
		r = recvmsg(c->sock, &m, MSG_CMSG_CLOEXEC);
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r <= 0)
			return got ? -EPROTO : -EPIPE;
		for (cm = CMSG_FIRSTHDR(&m); cm; cm = CMSG_NXTHDR(&m, cm)) {
			int *fds = (int *)CMSG_DATA(cm);
			size_t i, k;

			if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
				continue;
			k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (i = 0; i < k; i++) {
				if (c->passed_fd >= 0)
					close(c->passed_fd);
				c->passed_fd = fds[i];
			}
		}
		got += r;
		if (timeout_ms < 0)
			timeout_ms = BODY_TIMEOUT_MS;
	}
	return 0;
}

static int write_full(int fd, const void *buf, size_t n)
{
	size_t done = 0;

	while (done < n) {
		ssize_t r = send(fd, (const char *)buf + done, n - done,
				 MSG_NOSIGNAL);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -EPIPE;
		done += r;
	}
	return 0;
}

static void client_close(struct client *c)
{
	int i;

	for (i = 0; i < MAX_CAPTURES; i++)
		if (c->captures[i])
			lkl_capture_stop(c->captures[i], NULL);
	while (c->nfds)
		forget(c, c->fds[0]);
	if (c->passed_fd >= 0)
		close(c->passed_fd);
	close(c->sock);
	free(c->in);
	free(c->out);
}

static void *client_main(void *arg)
{
	struct client *c = arg;

	for (;;) {
		struct ctl_reply rep;
		size_t outlen;
		int r;

		r = read_full(c, &c->req, sizeof(c->req), -1);
		if (r == -EPIPE || r == -ECANCELED)
			break;
		if (r || c->req.magic != CTL_MAGIC ||
		    c->req.version != CTL_VERSION || c->req.len > CTL_MAX_DATA) {
			STAT_ADD(malformed, 1);
			break;
		}
		if (c->req.len && read_full(c, c->in, c->req.len,
					    BODY_TIMEOUT_MS)) {
			STAT_ADD(malformed, 1);
			break;
		}
		memset(&rep, 0, sizeof(rep));
		rep.magic = CTL_MAGIC;
		rep.version = CTL_VERSION;
		rep.op = c->req.op | CTL_REPLY;
		rep.seq = c->req.seq;
		if (serve(c, &rep, &outlen)) {
			STAT_ADD(malformed, 1);
			rep.result = -EINVAL;
			outlen = 0;
		} else {
			STAT_ADD(requests, 1);
		}
		if (rep.result < 0)
			STAT_ADD(errors, 1);
		/* A passed fd that no capture took is not kept. */
		if (c->passed_fd >= 0) {
			close(c->passed_fd);
			c->passed_fd = -1;
		}
		rep.len = outlen;
		if (write_full(c->sock, &rep, sizeof(rep)) ||
		    (outlen && write_full(c->sock, c->out, outlen)))
			break;
	}
	client_close(c);
	__atomic_fetch_sub(&stats.clients, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&c->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* Join the threads of clients that have gone (lock held). */
static void reap(int all)
{
	int i;

	for (i = 0; i < MAX_CLIENTS; i++) {
		struct client *c = clients[i];

		if (!c || (!all && !__atomic_load_n(&c->done, __ATOMIC_ACQUIRE)))
			continue;
		pthread_join(c->thread, NULL);
		free(c);
		clients[i] = NULL;
	}
}

/* The refusal answers the client's first request (a HELLO, seq 1). */
static void refuse(int fd, int err)
{
	struct ctl_reply rep = {
		.magic = CTL_MAGIC, .version = CTL_VERSION,
		.op = CTL_HELLO | CTL_REPLY, .seq = 1, .result = -err,
	};

	write_full(fd, &rep, sizeof(rep));
	close(fd);
}

static void accept_one(void)
{
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	struct client *c;
	int fd, i, slot = -1;

	fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) ||
	    (cred.uid != geteuid() && cred.uid != 0)) {
		STAT_ADD(refused, 1);
		refuse(fd, EACCES);
		return;
	}
	pthread_mutex_lock(&lock);
	reap(0);
	for (i = 0; i < MAX_CLIENTS; i++)
		if (!clients[i]) {
			slot = i;
			break;
		}
	c = slot < 0 ? NULL : calloc(1, sizeof(*c));
	if (c) {
		c->in = malloc(CTL_MAX_DATA);
		c->out = malloc(CTL_MAX_DATA);
	}
	if (!c || !c->in || !c->out) {
		pthread_mutex_unlock(&lock);
		if (c) {
			free(c->in);
			free(c->out);
			free(c);
		}
		STAT_ADD(refused, 1);
		refuse(fd, slot < 0 ? EUSERS : ENOMEM);
		return;
	}
	c->sock = fd;
	c->slot = slot;
	c->passed_fd = -1;
	STAT_ADD(clients, 1);
	STAT_ADD(accepted, 1);
	if (pthread_create(&c->thread, NULL, client_main, c)) {
		__atomic_fetch_sub(&stats.clients, 1, __ATOMIC_RELAXED);
		free(c->in);
		free(c->out);
		free(c);
		pthread_mutex_unlock(&lock);
		refuse(fd, EAGAIN);
		return;
	}
	clients[slot] = c;
	pthread_mutex_unlock(&lock);
}

static void *acceptor_main(void *arg)
{
	for (;;) {
		struct pollfd pf[2] = {
			{ .fd = listen_fd, .events = POLLIN },
			{ .fd = stop_fd, .events = POLLIN },
		};

		if (poll(pf, 2, 1000) < 0 && errno != EINTR)
			break;
		if (pf[1].revents)
			break;
		if (pf[0].revents & POLLIN)
			accept_one();
		pthread_mutex_lock(&lock);
		reap(0);
		pthread_mutex_unlock(&lock);
	}
	return NULL;
}

/* ---- start and stop ----------------------------------------------------- */

int lkl_control_start(const char *name)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char dir[sizeof(sock_path) - 80];
	int r, n;

	if (!name || !valid_name(name))
		return -EINVAL;
	if (!lkl_is_running())
		return -ENODEV;
	pthread_mutex_lock(&lock);
	if (serving) {
		pthread_mutex_unlock(&lock);
		return -EBUSY;
	}
	r = lkl_control_dir(dir, sizeof(dir));
	if (r == 0)
		r = make_dir(dir);
	if (r)
		goto out;
	n = snprintf(sock_path, sizeof(sock_path), "%s/%s.sock", dir, name);
	if (n < 0 || (size_t)n >= sizeof(sock_path)) {
		r = -ENAMETOOLONG;
		goto out;
	}
	if (alive(sock_path)) {
		r = -EEXIST;
		goto out;
	}
	unlink(sock_path);	/* stale: its process is gone */
	/*
	 * Bound and listening under a temporary name, then renamed into
	 * place: whoever sees the socket's path can connect at once.
	 */
	n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/.%s.%d.tmp", dir,
		     name, (int)getpid());
	if (n < 0 || (size_t)n >= sizeof(sa.sun_path)) {
		r = -ENAMETOOLONG;
		goto out;
	}
	unlink(sa.sun_path);
	listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	stop_fd = eventfd(0, EFD_CLOEXEC);
	if (listen_fd < 0 || stop_fd < 0) {
		r = -errno;
		goto fail;
	}
	{
		mode_t old = umask(0177);	/* the socket is born 0600 */

		r = bind(listen_fd, (struct sockaddr *)&sa, sizeof(sa));
		umask(old);
	}
	if (r || chmod(sa.sun_path, 0600) || listen(listen_fd, 16) ||
	    rename(sa.sun_path, sock_path)) {
		r = -errno;
		unlink(sa.sun_path);
		goto fail_unlink;
	}
	snprintf(served_name, sizeof(served_name), "%s", name);
	started = time(NULL);
	r = pthread_create(&acceptor, NULL, acceptor_main, NULL);
	if (r) {
		r = -r;
		goto fail_unlink;
	}
	serving = 1;
	pthread_mutex_unlock(&lock);
	return 0;

fail_unlink:
	unlink(sock_path);
fail:
	if (listen_fd >= 0)
		close(listen_fd);
	if (stop_fd >= 0)
		close(stop_fd);
	listen_fd = stop_fd = -1;
out:
	sock_path[0] = 0;
	pthread_mutex_unlock(&lock);
	return r;
}

int lkl_control_stop(void)
{
	uint64_t one = 1;
	int i;

	pthread_mutex_lock(&lock);
	if (!serving) {
		pthread_mutex_unlock(&lock);
		return 0;
	}
	serving = 0;
	pthread_mutex_unlock(&lock);
	if (write(stop_fd, &one, sizeof(one)) < 0)
		return -errno;
	pthread_join(acceptor, NULL);
	pthread_mutex_lock(&lock);
	/* A client deep in a kernel call finishes it; shutdown ends the rest. */
	for (i = 0; i < MAX_CLIENTS; i++)
		if (clients[i])
			shutdown(clients[i]->sock, SHUT_RDWR);
	pthread_mutex_unlock(&lock);
	/* Joined without the lock: a client thread may want it (captures). */
	for (i = 0; i < MAX_CLIENTS; i++) {
		if (clients[i]) {
			pthread_join(clients[i]->thread, NULL);
			free(clients[i]);
			clients[i] = NULL;
		}
	}
	unlink(sock_path);
	close(listen_fd);
	close(stop_fd);
	listen_fd = stop_fd = -1;
	sock_path[0] = 0;
	return 0;
}

const char *lkl_control_path(void)
{
	return sock_path;
}

int lkl_control_add_netdev(struct lkl_netdev *dev)
{
	int i, r = -ENOSPC;

	pthread_mutex_lock(&lock);
	for (i = 0; i < MAX_NETDEVS; i++)
		if (netdevs[i] == dev) {
			r = 0;
			goto out;
		}
	for (i = 0; i < MAX_NETDEVS; i++)
		if (!netdevs[i]) {
			netdevs[i] = dev;
			r = 0;
			break;
		}
out:
	pthread_mutex_unlock(&lock);
	return r;
}

void lkl_control_del_netdev(struct lkl_netdev *dev)
{
	int i;

	pthread_mutex_lock(&lock);
	for (i = 0; i < MAX_NETDEVS; i++)
		if (netdevs[i] == dev)
			netdevs[i] = NULL;
	pthread_mutex_unlock(&lock);
}

void lkl_control_get_stats(struct lkl_control_stats *st)
{
	st->clients = __atomic_load_n(&stats.clients, __ATOMIC_RELAXED);
	st->accepted = __atomic_load_n(&stats.accepted, __ATOMIC_RELAXED);
	st->refused = __atomic_load_n(&stats.refused, __ATOMIC_RELAXED);
	st->requests = __atomic_load_n(&stats.requests, __ATOMIC_RELAXED);
	st->malformed = __atomic_load_n(&stats.malformed, __ATOMIC_RELAXED);
	st->errors = __atomic_load_n(&stats.errors, __ATOMIC_RELAXED);
	st->open_fds = __atomic_load_n(&stats.open_fds, __ATOMIC_RELAXED);
}
