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
#include <sys/eventfd.h>
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

struct watch {
	int kfd;		/* -1: free slot */
	int rfd, wfd;		/* host eventfds; wfd -1 until asked for */
	int want_write;
	unsigned gen;
};

static pthread_mutex_t watch_lock = PTHREAD_MUTEX_INITIALIZER;
static struct watch *watches;
static int nwatches;
static int epfd = -1;
static pthread_t poller;
static int poller_running;

#define READ_EVENTS (LKL_POLLIN | LKL_POLLRDHUP | LKL_POLLERR | LKL_POLLHUP)
#define WRITE_EVENTS (LKL_POLLOUT | LKL_POLLERR | LKL_POLLHUP)
#define POLLER_BATCH 64

static uint64_t watch_key(int slot, unsigned gen)
{
	return ((uint64_t)gen << 32) | (uint32_t)slot;
}

/* watch_lock held. */
static struct watch *watch_get(int slot, unsigned gen)
{
	if (slot < 0 || slot >= nwatches || watches[slot].kfd < 0 ||
	    watches[slot].gen != gen)
		return NULL;
	return &watches[slot];
}

static void efd_clear(int fd)
{
	uint64_t v;

	if (fd >= 0 && read(fd, &v, sizeof(v)) < 0) {
		/* EAGAIN: it was clear already. */
	}
}

static void efd_set(int fd)
{
	uint64_t one = 1;

	if (fd >= 0 && write(fd, &one, sizeof(one)) < 0) {
		/* EAGAIN only if the counter is saturated: still set. */
	}
}

static long poll_now(struct lkl_pollfd *fds, long n)
{
	struct lkl__kernel_timespec zero = { 0, 0 };

	return sys6(LKL__NR_ppoll, (long)fds, n, (long)&zero, 0, 8, 0);
}

/*
 * watch_lock held: the readiness check and the eventfd update are one
 * step against the poller, so a late epoll event cannot re-set an
 * eventfd after the socket was drained.
 */
static void watch_refresh(struct watch *w, int which)
{
	struct lkl_pollfd pfd = { .fd = w->kfd, .events = 0 };

	if (which & GLUE_READ) {
		efd_clear(w->rfd);
		pfd.events |= READ_EVENTS;
	}
	if ((which & GLUE_WRITE) && w->wfd >= 0) {
		efd_clear(w->wfd);
		pfd.events |= WRITE_EVENTS;
	}
	if (!pfd.events || poll_now(&pfd, 1) <= 0)
		return;
	if ((which & GLUE_READ) && (pfd.revents & READ_EVENTS))
		efd_set(w->rfd);
	if ((which & GLUE_WRITE) && w->wfd >= 0 &&
	    (pfd.revents & WRITE_EVENTS))
		efd_set(w->wfd);
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
		if (n < 0)
			break;	/* -ENODEV: halted */
		pthread_mutex_lock(&watch_lock);
		for (i = 0, k = 0; i < n; i++) {
			uint64_t key = events[i].data;
			struct watch *w = watch_get((int)(uint32_t)key,
						    (unsigned)(key >> 32));

			if (!w)
				continue;
			ws[k] = w;
			pfds[k].fd = w->kfd;
			pfds[k].events = READ_EVENTS;
			if (w->want_write && w->wfd >= 0)
				pfds[k].events |= WRITE_EVENTS;
			pfds[k].revents = 0;
			k++;
		}
		if (k > 0 && poll_now(pfds, k) > 0) {
			for (i = 0; i < k; i++) {
				if (pfds[i].revents & READ_EVENTS)
					efd_set(ws[i]->rfd);
				if (ws[i]->want_write &&
				    (pfds[i].revents & WRITE_EVENTS))
					efd_set(ws[i]->wfd);
			}
		}
		pthread_mutex_unlock(&watch_lock);
	}
	return NULL;
}

static long epoll_set(int op, int kfd, int slot, unsigned gen, int write)
{
	struct lkl_epoll_event ev;

	ev.events = LKL_EPOLLIN | LKL_EPOLLRDHUP | LKL_EPOLLET |
		(write ? LKL_EPOLLOUT : 0);
	ev.data = watch_key(slot, gen);
	return sys6(LKL__NR_epoll_ctl, epfd, op, kfd, (long)&ev, 0, 0);
}

int glue_watch_add(int kfd, int *slot, unsigned *gen, int *rfd)
{
	struct watch *w;
	long ret;
	int i, fd;

	if (epfd < 0 || !poller_running)
		return -LKL_ENODEV;
	fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (fd < 0)
		return -errno;

	pthread_mutex_lock(&watch_lock);
	for (i = 0; i < nwatches && watches[i].kfd >= 0; i++)
		;
	if (i == nwatches) {
		int n = nwatches ? 2 * nwatches : 64;
		struct watch *grown = realloc(watches, n * sizeof(*grown));

		if (!grown) {
			pthread_mutex_unlock(&watch_lock);
			close(fd);
			return -ENOMEM;
		}
		for (int j = nwatches; j < n; j++) {
			grown[j].kfd = -1;
			grown[j].gen = 0;
		}
		watches = grown;
		nwatches = n;
	}
	w = &watches[i];
	w->gen++;
	w->kfd = kfd;
	w->rfd = fd;
	w->wfd = -1;
	w->want_write = 0;
	ret = epoll_set(LKL_EPOLL_CTL_ADD, kfd, i, w->gen, 0);
	if (ret < 0) {
		w->kfd = -1;
		w->gen++;
		pthread_mutex_unlock(&watch_lock);
		close(fd);
		return (int)ret;
	}
	watch_refresh(w, GLUE_READ);
	*slot = i;
	*gen = w->gen;
	*rfd = fd;
	pthread_mutex_unlock(&watch_lock);
	return 0;
}

int glue_watch_write_fd(int slot, unsigned gen, int want, int *wfd)
{
	struct watch *w;
	long ret = 0;

	pthread_mutex_lock(&watch_lock);
	w = watch_get(slot, gen);
	if (!w) {
		pthread_mutex_unlock(&watch_lock);
		return -LKL_EBADF;
	}
	if (w->wfd < 0) {
		w->wfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (w->wfd < 0) {
			ret = -errno;
			goto out;
		}
	}
	want = !!want;
	if (want != w->want_write) {
		ret = epoll_set(LKL_EPOLL_CTL_MOD, w->kfd, slot, gen, want);
		if (ret < 0)
			goto out;
		w->want_write = want;
	}
	watch_refresh(w, GLUE_WRITE);
	*wfd = w->wfd;
out:
	pthread_mutex_unlock(&watch_lock);
	return (int)ret;
}

void glue_watch_rearm(int slot, unsigned gen, int which)
{
	struct watch *w;

	pthread_mutex_lock(&watch_lock);
	w = watch_get(slot, gen);
	if (w)
		watch_refresh(w, which);
	pthread_mutex_unlock(&watch_lock);
}

void glue_watch_del(int slot, unsigned gen)
{
	struct watch *w;
	int kfd, rfd, wfd;

	pthread_mutex_lock(&watch_lock);
	w = watch_get(slot, gen);
	if (!w) {
		pthread_mutex_unlock(&watch_lock);
		return;
	}
	kfd = w->kfd;
	rfd = w->rfd;
	wfd = w->wfd;
	w->kfd = -1;
	w->gen++;
	pthread_mutex_unlock(&watch_lock);

	/* The kfd stays open (detach) or closes next; either way, forget it. */
	if (lkl_is_running() && !forked) {
		struct lkl_epoll_event ev = { 0, 0 };

		sys6(LKL__NR_epoll_ctl, epfd, LKL_EPOLL_CTL_DEL, kfd, (long)&ev,
		     0, 0);
	}
	close(rfd);
	if (wfd >= 0)
		close(wfd);
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
	pthread_mutex_init(&watch_lock, NULL);
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
	K(RTM_NEWLINK) K(RTM_DELLINK) K(RTM_NEWADDR) K(RTM_NEWROUTE)
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

/*
 * lkl_syscall_mode() (and the lkl.syscall_mode= boot parameter) came with
 * the direct mode: a weak reference keeps the package buildable against a
 * library without it.
 */
#pragma weak lkl_syscall_mode

int glue_have_syscall_mode(void)
{
	return lkl_syscall_mode != NULL;
}

int glue_syscall_mode(void)
{
	if (!lkl_syscall_mode || !lkl_is_running() || forked)
		return -1;
	return lkl_syscall_mode();
}
