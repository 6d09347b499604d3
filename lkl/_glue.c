/*
 * The C side of the lkl Python extension (see _glue.h).  This file sees
 * libc and the exported, prefixed lkl headers; it never calls Python.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <lkl/lkl.h>
#include <lkl/asm/unistd.h>
#include <lkl/asm-generic/errno.h>
#include <lkl/asm-generic/poll.h>
#include <lkl/asm-generic/socket.h>
#include <lkl/linux/eventpoll.h>
#include <lkl/linux/fcntl.h>
#include <lkl/linux/in.h>
#include <lkl/linux/in6.h>
#include <lkl/linux/socket_abi.h>
/* After socket_abi.h: linux/if.h uses struct lkl_sockaddr without including it. */
#include <lkl/linux/if.h>
#include <lkl/linux/sockios.h>
#include <lkl/linux/ethtool.h>
#include <lkl/linux/if_addr.h>
#include <lkl/linux/if_ether.h>
#include <lkl/linux/neighbour.h>
#include <lkl/linux/netlink.h>
#include <lkl/linux/pkt_sched.h>
#include <lkl/linux/rtnetlink.h>
#include <lkl/linux/tcp.h>
#include <lkl/linux/time_types.h>
#include <lkl/linux/un.h>
#include <lkl/linux/utsname.h>

#include "_glue.h"

/*
 * The Python side raises the host's OSError subclasses from kernel
 * errnos: that is only right while both number errors alike.
 */
_Static_assert(LKL_EAGAIN == EAGAIN && LKL_EINPROGRESS == EINPROGRESS &&
	       LKL_ECONNREFUSED == ECONNREFUSED &&
	       LKL_ECONNRESET == ECONNRESET && LKL_EPIPE == EPIPE &&
	       LKL_ETIMEDOUT == ETIMEDOUT && LKL_EADDRINUSE == EADDRINUSE &&
	       LKL_ENOTCONN == ENOTCONN && LKL_EISCONN == EISCONN &&
	       LKL_EALREADY == EALREADY && LKL_ENOPROTOOPT == ENOPROTOOPT &&
	       LKL_EAFNOSUPPORT == EAFNOSUPPORT &&
	       LKL_EADDRNOTAVAIL == EADDRNOTAVAIL &&
	       LKL_ECONNABORTED == ECONNABORTED && LKL_ENOTSOCK == ENOTSOCK &&
	       LKL_EMSGSIZE == EMSGSIZE && LKL_EDESTADDRREQ == EDESTADDRREQ &&
	       LKL_EHOSTUNREACH == EHOSTUNREACH &&
	       LKL_ENETUNREACH == ENETUNREACH && LKL_EOPNOTSUPP == EOPNOTSUPP,
	       "kernel and host errno numbers differ");

static int forked;

static void child_after_fork(void);

/* ---- console ------------------------------------------------------------ */

#define GLUE_CONSOLE_KEEP (1u << 20)

static pthread_mutex_t con_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t con_cond = PTHREAD_COND_INITIALIZER;
static char *con_buf;		/* con_len bytes, the text from con_base on */
static size_t con_len, con_cap;
static uint64_t con_base;
static int con_closed;

/*
 * The kernel's print hook: it runs on kernel threads holding the kernel
 * CPU lock, so it uses libc only.  Past GLUE_CONSOLE_KEEP bytes the
 * oldest half is dropped (offsets keep counting).
 */
static void glue_print(const char *str, int len)
{
	size_t need, cap;

	if (len <= 0)
		return;
	pthread_mutex_lock(&con_lock);
	if ((size_t)len > GLUE_CONSOLE_KEEP) {
		size_t skip = len - GLUE_CONSOLE_KEEP;

		str += skip;
		len -= skip;
		con_base += skip;
	}
	if (con_len + len > GLUE_CONSOLE_KEEP) {
		size_t drop = con_len + len - GLUE_CONSOLE_KEEP / 2;

		if (drop > con_len)
			drop = con_len;
		memmove(con_buf, con_buf + drop, con_len - drop);
		con_len -= drop;
		con_base += drop;
	}
	need = con_len + len;
	if (need > con_cap) {
		char *grown;

		cap = con_cap ? con_cap : 16384;
		while (cap < need)
			cap *= 2;
		grown = realloc(con_buf, cap);
		if (!grown)
			goto out;	/* out of memory: this text is lost */
		con_buf = grown;
		con_cap = cap;
	}
	memcpy(con_buf + con_len, str, len);
	con_len += len;
out:
	pthread_cond_broadcast(&con_cond);
	pthread_mutex_unlock(&con_lock);
}

uint64_t glue_console_copy(uint64_t start, char **text, uint64_t *len)
{
	uint64_t end;
	size_t from;

	*text = NULL;
	*len = 0;
	pthread_mutex_lock(&con_lock);
	end = con_base + con_len;
	if (start < con_base)
		start = con_base;
	if (start < end) {
		from = start - con_base;
		*text = malloc(end - start);
		if (*text) {
			memcpy(*text, con_buf + from, end - start);
			*len = end - start;
		} else {
			end = start;
		}
	}
	pthread_mutex_unlock(&con_lock);
	return end;
}

void glue_deadline(struct timespec *deadline, int clock, double timeout)
{
	clock_gettime(clock, deadline);
	deadline->tv_sec += (time_t)timeout;
	deadline->tv_nsec += (long)((timeout - (time_t)timeout) * 1e9);
	if (deadline->tv_nsec >= 1000000000L) {
		deadline->tv_sec++;
		deadline->tv_nsec -= 1000000000L;
	}
}

uint64_t glue_console_wait(uint64_t offset, double timeout)
{
	struct timespec deadline;
	uint64_t end;

	glue_deadline(&deadline, CLOCK_REALTIME, timeout);
	pthread_mutex_lock(&con_lock);
	while (con_base + con_len <= offset && !con_closed)
		if (pthread_cond_timedwait(&con_cond, &con_lock, &deadline))
			break;
	end = con_base + con_len;
	pthread_mutex_unlock(&con_lock);
	return end;
}

int glue_console_closed(void)
{
	int closed;

	pthread_mutex_lock(&con_lock);
	closed = con_closed;
	pthread_mutex_unlock(&con_lock);
	return closed;
}

/* ---- syscalls ----------------------------------------------------------- */

long glue_syscall(long nr, long *params)
{
	if (__atomic_load_n(&forked, __ATOMIC_RELAXED))
		return -LKL_ENODEV;
	return lkl_syscall(nr, params);
}

static long sys6(long nr, long a, long b, long c, long d, long e, long f)
{
	long params[6] = { a, b, c, d, e, f };

	return glue_syscall(nr, params);
}

/* ---- watches and the poller --------------------------------------------- */

/*
 * A watch mirrors a kernel socket's readiness on a host endpoint: end u
 * of a host AF_UNIX stream socketpair (u, c).  u is readable while one
 * byte that c wrote is queued at u, and u is not writable while a chunk
 * that u wrote (with u's send buffer at its minimum) waits unread at c.
 * So u shows the kernel socket's POLLIN and POLLOUT, and "neither" too.
 *
 * Watches are heap objects that are never freed (a free one is reused
 * with a new gen), so a pointer read under table_lock stays valid; each
 * has its own lock, held across the readiness check and the endpoint
 * update, so that a late check cannot undo a newer one.  No lock but a
 * watch's own is held across a kernel call.
 */
struct watch {
	pthread_mutex_t lock;
	int kfd;		/* -1: free */
	int u, c;		/* the endpoint and its hidden peer */
	unsigned gen;
	unsigned shown;		/* SHOWN_* bits: what u shows now */
	unsigned seq;		/* checks shown so far (see glue_watch_settle) */
	short last;		/* the revents the last check saw */
};

#define SHOWN_READABLE 1u
#define SHOWN_UNWRITABLE 2u

/* Twice SOCK_MIN_SNDBUF/4: one skb that keeps u's wmem past the limit. */
#define CHUNK 2048

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static struct watch **watches;
static int nwatches, watches_cap;
static int epfd = -1;
static pthread_t poller;
static int poller_running;
static int poller_errno;	/* set once the poller died of an error */
static unsigned long poller_failures;

#define READ_EVENTS (LKL_POLLIN | LKL_POLLRDHUP)
#define WRITE_EVENTS LKL_POLLOUT
#define FAIL_EVENTS (LKL_POLLERR | LKL_POLLHUP)
#define POLLER_BATCH 64

static uint64_t watch_key(int slot, unsigned gen)
{
	return ((uint64_t)gen << 32) | (uint32_t)slot;
}

/* The watch (slot, gen), locked; NULL if the name is stale. */
static struct watch *watch_lock(int slot, unsigned gen)
{
	struct watch *w = NULL;

	pthread_mutex_lock(&table_lock);
	if (slot >= 0 && slot < nwatches)
		w = watches[slot];
	pthread_mutex_unlock(&table_lock);
	if (!w)
		return NULL;
	pthread_mutex_lock(&w->lock);
	if (w->kfd < 0 || w->gen != gen) {
		pthread_mutex_unlock(&w->lock);
		return NULL;
	}
	return w;
}

static void drain(int fd)
{
	char buf[CHUNK];

	while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;
}

/* w->lock held: make u show what revents (of a kernel ppoll) says. */
static void watch_show(struct watch *w, short revents)
{
	static const char chunk[CHUNK];
	unsigned want = 0;

	if (revents & FAIL_EVENTS) {
		want = SHOWN_READABLE;	/* select(): readable and writable */
	} else {
		if (revents & READ_EVENTS)
			want |= SHOWN_READABLE;
		if (!(revents & WRITE_EVENTS))
			want |= SHOWN_UNWRITABLE;
	}
	if ((want ^ w->shown) & SHOWN_READABLE) {
		if (want & SHOWN_READABLE) {
			if (send(w->c, "r", 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
				want &= ~SHOWN_READABLE;
		} else {
			drain(w->u);
		}
	}
	if ((want ^ w->shown) & SHOWN_UNWRITABLE) {
		if (want & SHOWN_UNWRITABLE) {
			if (send(w->u, chunk, sizeof(chunk),
				 MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
				want &= ~SHOWN_UNWRITABLE;
		} else {
			drain(w->c);
		}
	}
	w->shown = want;
	w->last = revents;
	__atomic_add_fetch(&w->seq, 1, __ATOMIC_RELEASE);
}

static long poll_now(struct lkl_pollfd *fds, long n)
{
	struct lkl__kernel_timespec zero = { 0, 0 };

	return sys6(LKL__NR_ppoll, (long)fds, n, (long)&zero, 0, 8, 0);
}

/* w->lock held: check the kernel socket now and show the result. */
static void watch_check(struct watch *w)
{
	struct lkl_pollfd pfd = {
		.fd = w->kfd,
		.events = READ_EVENTS | WRITE_EVENTS,
	};

	if (poll_now(&pfd, 1) >= 0)
		watch_show(w, pfd.revents);
}

static void poller_failed(long err)
{
	char line[160];
	int len;

	__atomic_add_fetch(&poller_failures, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&poller_errno, (int)-err, __ATOMIC_RELEASE);
	len = snprintf(line, sizeof(line),
		       "lkl: the socket readiness poller stopped: epoll_pwait: %s (errno %ld); fileno() and readiness waits now fail\n",
		       strerror((int)-err), -err);
	if (len > 0)
		glue_print(line, len < (int)sizeof(line) ? len : (int)sizeof(line) - 1);
}

static void *poller_main(void *arg)
{
	struct lkl_epoll_event events[POLLER_BATCH];
	struct lkl_pollfd pfds[POLLER_BATCH];
	struct watch *ws[POLLER_BATCH];
	sigset_t all;
	long n, i, k;

	(void)arg;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, NULL);
	for (;;) {
		n = sys6(LKL__NR_epoll_pwait, epfd, (long)events, POLLER_BATCH,
			 -1, 0, 8);
		if (n == -LKL_EINTR)
			continue;
		if (n == -LKL_ENODEV && (!lkl_is_running() || forked))
			break;	/* halted */
		if (n < 0) {
			poller_failed(n);
			break;
		}
		/* One ppoll for the batch; no thread holds two watch locks else. */
		for (i = 0, k = 0; i < n; i++) {
			uint64_t key = events[i].data;
			struct watch *w = watch_lock((int)(uint32_t)key,
						     (unsigned)(key >> 32));

			if (!w)
				continue;
			ws[k] = w;
			pfds[k].fd = w->kfd;
			pfds[k].events = READ_EVENTS | WRITE_EVENTS;
			pfds[k].revents = 0;
			k++;
		}
		if (k > 0 && poll_now(pfds, k) >= 0)
			for (i = 0; i < k; i++)
				watch_show(ws[i], pfds[i].revents);
		for (i = 0; i < k; i++)
			pthread_mutex_unlock(&ws[i]->lock);
	}
	return NULL;
}

int glue_poller_error(void)
{
	return __atomic_load_n(&poller_errno, __ATOMIC_ACQUIRE);
}

unsigned long glue_poller_failures(void)
{
	return __atomic_load_n(&poller_failures, __ATOMIC_RELAXED);
}

int glue_poller_break(void)
{
	long fd = epfd;

	return fd < 0 ? -LKL_ENODEV : (int)sys6(LKL__NR_close, fd, 0, 0, 0, 0, 0);
}

static int endpoint_open(int *u, int *c)
{
	int sv[2], one = 1;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
		       sv) < 0)
		return -errno;
	/* The minimum (the kernel raises 1 to SOCK_MIN_SNDBUF). */
	if (setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &one, sizeof(one)) < 0) {
		int err = -errno;

		close(sv[0]);
		close(sv[1]);
		return err;
	}
	*u = sv[0];
	*c = sv[1];
	return 0;
}

/* A free or new watch, locked (table_lock held); NULL without memory. */
static struct watch *watch_slot(int *slot)
{
	struct watch *w;
	int i;

	for (i = 0; i < nwatches; i++) {
		/* trylock: never wait for a watch lock under table_lock. */
		if (__atomic_load_n(&watches[i]->kfd, __ATOMIC_RELAXED) < 0 &&
		    pthread_mutex_trylock(&watches[i]->lock) == 0) {
			if (watches[i]->kfd < 0) {
				*slot = i;
				return watches[i];
			}
			pthread_mutex_unlock(&watches[i]->lock);
		}
	}
	if (nwatches == watches_cap) {
		int n = watches_cap ? 2 * watches_cap : 64;
		struct watch **grown = realloc(watches, n * sizeof(*grown));

		if (!grown)
			return NULL;
		watches = grown;
		watches_cap = n;
	}
	w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	pthread_mutex_init(&w->lock, NULL);
	w->kfd = -1;
	pthread_mutex_lock(&w->lock);
	watches[nwatches++] = w;
	*slot = i;
	return w;
}

static long epoll_set(int op, int kfd, int slot, unsigned gen)
{
	struct lkl_epoll_event ev;

	ev.events = LKL_EPOLLIN | LKL_EPOLLOUT | LKL_EPOLLRDHUP | LKL_EPOLLET;
	ev.data = watch_key(slot, gen);
	return sys6(LKL__NR_epoll_ctl, epfd, op, kfd, (long)&ev, 0, 0);
}

int glue_watch_add(int kfd, int *slot, unsigned *gen, int *hostfd)
{
	static const char chunk[CHUNK];
	struct watch *w;
	long ret;
	int i, u = -1, c = -1, err;

	if (glue_poller_error())
		return -LKL_EIO;
	if (epfd < 0 || !poller_running)
		return -LKL_ENODEV;
	err = endpoint_open(&u, &c);
	if (err)
		return err;

	pthread_mutex_lock(&table_lock);
	w = watch_slot(&i);
	pthread_mutex_unlock(&table_lock);
	if (!w) {
		close(u);
		close(c);
		return -ENOMEM;
	}
	/* A fresh endpoint shows "neither" until the first check. */
	if (send(u, chunk, sizeof(chunk), MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
		err = -errno;
		pthread_mutex_unlock(&w->lock);
		close(u);
		close(c);
		return err;
	}
	w->gen++;
	w->kfd = kfd;
	w->u = u;
	w->c = c;
	w->shown = SHOWN_UNWRITABLE;
	ret = epoll_set(LKL_EPOLL_CTL_ADD, kfd, i, w->gen);
	if (ret < 0) {
		w->kfd = -1;
		w->gen++;
		pthread_mutex_unlock(&w->lock);
		close(u);
		close(c);
		return (int)ret;
	}
	watch_check(w);
	*slot = i;
	*gen = w->gen;
	*hostfd = u;
	pthread_mutex_unlock(&w->lock);
	return 0;
}

void glue_watch_refresh(int slot, unsigned gen)
{
	struct watch *w = watch_lock(slot, gen);

	if (w) {
		watch_check(w);
		pthread_mutex_unlock(&w->lock);
	}
}

unsigned glue_watch_seq(int slot, unsigned gen)
{
	struct watch *w = watch_lock(slot, gen);
	unsigned seq = 0;

	if (w) {
		seq = w->seq;
		pthread_mutex_unlock(&w->lock);
	}
	return seq;
}

void glue_watch_settle(int slot, unsigned gen, unsigned seq, int drained)
{
	struct watch *w = watch_lock(slot, gen);
	short revents;

	if (!w)
		return;
	/*
	 * The call drained the socket, and no check was shown since before
	 * it: so any data that came since is an epoll event the poller has
	 * yet to show, after this.  End of file and errors stay readable,
	 * so they always take a real check.
	 */
	if (drained && w->seq == seq &&
	    !(w->last & (LKL_POLLRDHUP | LKL_POLLHUP | LKL_POLLERR))) {
		revents = w->shown & SHOWN_UNWRITABLE ? 0 : WRITE_EVENTS;
		watch_show(w, revents);
	} else {
		watch_check(w);
	}
	pthread_mutex_unlock(&w->lock);
}

int glue_watch_shown(int slot, unsigned gen)
{
	struct watch *w = watch_lock(slot, gen);
	int shown = -1;

	if (w) {
		shown = (w->shown & SHOWN_READABLE ? GLUE_READ : 0) |
			(w->shown & SHOWN_UNWRITABLE ? 0 : GLUE_WRITE);
		pthread_mutex_unlock(&w->lock);
	}
	return shown;
}

void glue_watch_del(int slot, unsigned gen)
{
	struct watch *w = watch_lock(slot, gen);
	int kfd, u, c;

	if (!w)
		return;
	kfd = w->kfd;
	u = w->u;
	c = w->c;
	w->kfd = -1;
	w->gen++;
	pthread_mutex_unlock(&w->lock);

	/* The kfd stays open (detach) or closes next; either way, forget it. */
	if (lkl_is_running() && !forked) {
		struct lkl_epoll_event ev = { 0, 0 };

		sys6(LKL__NR_epoll_ctl, epfd, LKL_EPOLL_CTL_DEL, kfd, (long)&ev,
		     0, 0);
	}
	close(u);
	close(c);
}

/* ---- boot and halt ------------------------------------------------------ */

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void register_atfork(void)
{
	pthread_atfork(NULL, NULL, child_after_fork);
}

int glue_boot(const char *cmdline, int pin_cpu)
{
	sigset_t all, old;
	long ret;
	int err;

	if (forked)
		return -LKL_ENODEV;
	pthread_once(&atfork_once, register_atfork);
	if (pin_cpu >= -1) {
		err = lkl_host_set_pin_cpu(pin_cpu);
		if (err)
			return err;
	}
	lkl_host_ops.print = glue_print;
	pthread_mutex_lock(&con_lock);
	con_closed = 0;
	pthread_mutex_unlock(&con_lock);

	err = lkl_start_kernel(&lkl_host_ops, cmdline);
	if (err)
		return err;

	ret = sys6(LKL__NR_epoll_create1, LKL_EPOLL_CLOEXEC, 0, 0, 0, 0, 0);
	if (ret < 0)
		goto fail;
	epfd = (int)ret;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(&poller, NULL, poller_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		ret = -err;
		goto fail;
	}
	poller_running = 1;
	return 0;
fail:
	lkl_sys_halt();
	epfd = -1;
	return (int)ret;
}

long glue_halt(void)
{
	long ret;

	if (forked)
		return -LKL_ENODEV;
	ret = lkl_sys_halt();
	if (ret == 0 && poller_running) {
		/* Its epoll_pwait returned -ENODEV: it is leaving. */
		pthread_join(poller, NULL);
		poller_running = 0;
	}
	if (ret == 0) {
		epfd = -1;
		pthread_mutex_lock(&con_lock);
		con_closed = 1;
		pthread_cond_broadcast(&con_cond);
		pthread_mutex_unlock(&con_lock);
	}
	return ret;
}

static void child_after_fork(void)
{
	/* Another thread may have held these at fork: start them afresh. */
	pthread_mutex_init(&con_lock, NULL);
	pthread_cond_init(&con_cond, NULL);
	pthread_mutex_init(&table_lock, NULL);
	for (int i = 0; i < nwatches; i++)
		pthread_mutex_init(&watches[i]->lock, NULL);
	if (lkl_is_running())
		forked = 1;
	poller_running = 0;
	con_closed = 1;
}

void glue_mark_forked(void)
{
	forked = 1;
}

int glue_forked(void)
{
	return forked;
}

/* ---- constants ---------------------------------------------------------- */

#define K(name) { #name, (long)(LKL_##name) },

/* Exported by the lkl package: the names lkl/constants.py declares. */
const struct glue_const glue_constants[] = {
#include "lkl_constant_names.h"
	{ NULL, 0 }
};

#define SIZE(type) { "sizeof_" #type, (long)sizeof(struct lkl_##type) },

/* What the package itself needs: flags, errnos and structure sizes. */
const struct glue_const glue_internal_constants[] = {
	K(AT_FDCWD) K(O_RDONLY) K(O_WRONLY) K(O_RDWR) K(O_CREAT) K(O_TRUNC)
	K(O_APPEND) K(O_NONBLOCK) K(O_CLOEXEC) K(O_DIRECTORY)
	K(F_GETFL) K(F_SETFL)
	K(SIOCGIFFLAGS) K(SIOCSIFFLAGS) K(IFF_UP) K(IFNAMSIZ)
	/* Interface ioctls and rtnetlink (lkl/net/rtnl.py, lkl/net/tc.py). */
	K(SIOCGIFNAME) K(SIOCGIFINDEX) K(SIOCSIFMTU) K(SIOCGIFHWADDR)
	K(SIOCETHTOOL)
	K(ETHTOOL_GRXCSUM) K(ETHTOOL_SRXCSUM) K(ETHTOOL_GTXCSUM)
	K(ETHTOOL_STXCSUM) K(ETHTOOL_GTSO) K(ETHTOOL_STSO) K(ETHTOOL_GGSO)
	K(ETHTOOL_SGSO) K(ETHTOOL_GGRO) K(ETHTOOL_SGRO)
	K(NETLINK_ROUTE) K(NLMSG_ERROR) K(NLMSG_DONE) K(NLM_F_REQUEST)
	K(NLM_F_ACK) K(NLM_F_DUMP) K(NLM_F_REPLACE) K(NLM_F_EXCL)
	K(NLM_F_CREATE)
	K(RTM_NEWLINK) K(RTM_DELLINK) K(RTM_NEWADDR) K(RTM_GETADDR) K(RTM_NEWROUTE)
	K(RTM_NEWNEIGH) K(RTM_NEWQDISC) K(RTM_DELQDISC) K(RTM_GETQDISC)
	K(RTM_NEWTFILTER)
	K(RT_TABLE_MAIN) K(RTPROT_BOOT) K(RT_SCOPE_UNIVERSE) K(RT_SCOPE_LINK)
	K(RTN_UNICAST) K(NUD_PERMANENT) K(IFA_F_NODAD)
	K(TC_H_ROOT) K(TC_H_INGRESS) K(ETH_P_ALL)
	K(EAGAIN) K(EWOULDBLOCK) K(EINPROGRESS) K(EINTR) K(ENODEV) K(EBADF)
	K(EALREADY) K(EBUSY) K(EINVAL) K(ENOSYS) K(EISCONN)
	K(UNIX_PATH_MAX)
	SIZE(new_utsname) SIZE(ifreq) SIZE(sockaddr_in) SIZE(sockaddr_in6)
	SIZE(sockaddr_un) SIZE(tcp_info) SIZE(user_msghdr) SIZE(cmsghdr)
	SIZE(linger)
	{ NULL, 0 }
};

#undef K
#define K(name) { #name, (long)(LKL__NR_##name) },

/* Every syscall of the kernel, by name (generated by setup.py). */
const struct glue_const glue_syscall_numbers[] = {
#include "lkl_syscall_names.h"
	{ NULL, 0 }
};

int glue_syscall_mode(void)
{
	if (!lkl_is_running() || forked)
		return -1;
	return lkl_syscall_mode();
}
