/*
 * The fd map: every kernel socket of the program is a real host fd.
 *
 * For kernel socket kfd the program gets u, one end of a host AF_UNIX
 * stream socketpair (u, c).  u's readiness mirrors kfd's:
 *   readable(u)      <=> a byte sent by c is queued at u;
 *   not writable(u)  <=> u sent a chunk (more than a quarter of its
 *                        minimal send buffer) that c has not read.
 * A poller thread waits in the kernel's epoll (edge triggered, IN, OUT
 * and RDHUP on every kfd) and, like every interposed call on its own
 * socket afterwards, re-checks with a zero-timeout ppoll and updates
 * both bits (cached: no host syscall when nothing changed).  The
 * program's own select, poll and epoll then run on the host over host
 * fds and kernel sockets alike, and fd numbers never collide.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <lkl/lkl.h>
#include <lkl/asm/unistd.h>
#include <lkl/asm-generic/errno.h>
#include <lkl/asm-generic/poll.h>
#include <lkl/linux/eventpoll.h>
#include <lkl/linux/time_types.h>

#include "preload.h"

struct lsock {
	int kfd;		/* the kernel socket */
	int peer;		/* c: our end of the pair */
	int host;		/* one host fd mapping it (-1: none left) */
	int refs;		/* host fds + calls in flight; map_lock */
	int slot;		/* in slots[], for the poller's events */
	pthread_mutex_t lock;	/* the mirrored bits below */
	int readable, blocked;
};

#define READ_EVENTS (LKL_POLLIN | LKL_POLLPRI | LKL_POLLRDHUP | LKL_POLLERR | \
		     LKL_POLLHUP)
#define WRITE_EVENTS (LKL_POLLOUT | LKL_POLLERR | LKL_POLLHUP)
/* Larger than a quarter of a unix socket's minimal send buffer. */
#define BLOCK_CHUNK 2048
#define POLLER_BATCH 64

int preload_forked;

static pthread_mutex_t map_lock = PTHREAD_MUTEX_INITIALIZER;
static struct lsock **map;	/* host fd -> socket */
static int map_size;
static struct lsock **slots;	/* the poller's keys: slot | gen << 32 */
static unsigned *gens;
static int nslots;
static int kep = -1;		/* the kernel epoll */
static pthread_t poller;
static int poller_started;
static pid_t owner;		/* the process whose kernel this is */

long ksys_n(long nr, long *params)
{
	if (__atomic_load_n(&preload_forked, __ATOMIC_RELAXED))
		return -LKL_ENETDOWN;
	return lkl_syscall(nr, params);
}

long ksys(long nr, long a, long b, long c, long d, long e, long f)
{
	long params[6] = { a, b, c, d, e, f };

	return ksys_n(nr, params);
}

long kret(long ret)
{
	if (ret < 0) {
		errno = (int)-ret;
		return -1;
	}
	return ret;
}

int lsock_kfd(const struct lsock *s)
{
	return s->kfd;
}

static void drain(int fd)
{
	char buf[BLOCK_CHUNK];

	while (host_recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;
}

void lsock_sync(struct lsock *s)
{
	struct lkl_pollfd pfd = { .fd = s->kfd, .events = READ_EVENTS |
				  WRITE_EVENTS };
	struct lkl__kernel_timespec zero = { 0, 0 };
	static const char chunk[BLOCK_CHUNK];
	int r = 0, blocked = 1;
	long n;

	/* A forked child: its kernel is the parent's, s->lock maybe held. */
	if (__atomic_load_n(&preload_forked, __ATOMIC_RELAXED))
		return;
	pthread_mutex_lock(&s->lock);
	n = ksys(LKL__NR_ppoll, (long)&pfd, 1, (long)&zero, 0, 8, 0);
	if (n < 0)
		goto out;	/* halted or forked: leave it as it is */
	if (n > 0) {
		r = !!(pfd.revents & READ_EVENTS);
		blocked = !(pfd.revents & WRITE_EVENTS);
	}
	if (s->host < 0)
		goto out;
	if (r != s->readable) {
		if (r)
			host_send(s->peer, "r", 1, MSG_DONTWAIT | MSG_NOSIGNAL);
		else
			drain(s->host);
		s->readable = r;
	}
	if (blocked != s->blocked) {
		if (blocked)
			host_send(s->host, chunk, sizeof(chunk),
				  MSG_DONTWAIT | MSG_NOSIGNAL);
		else
			drain(s->peer);
		s->blocked = blocked;
	}
out:
	pthread_mutex_unlock(&s->lock);
}

/* map_lock held. */
static struct lsock *slot_get(uint64_t key)
{
	int slot = (int)(uint32_t)key;

	if (slot < 0 || slot >= nslots || !slots[slot] ||
	    gens[slot] != (unsigned)(key >> 32))
		return NULL;
	return slots[slot];
}

static void *poller_main(void *arg)
{
	struct lkl_epoll_event ev[POLLER_BATCH];
	struct lsock *s;
	sigset_t all;
	long n, i;

	(void)arg;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, NULL);
	for (;;) {
		n = ksys(LKL__NR_epoll_pwait, kep, (long)ev, POLLER_BATCH, -1,
			 0, 8);
		if (n == -LKL_EINTR)
			continue;
		if (n < 0)
			break;	/* -ENODEV: halted */
		for (i = 0; i < n; i++) {
			pthread_mutex_lock(&map_lock);
			s = slot_get(ev[i].data);
			if (s)
				s->refs++;
			pthread_mutex_unlock(&map_lock);
			if (s) {
				lsock_sync(s);
				fdmap_put(s);
			}
		}
	}
	return NULL;
}

static void before_fork(void)
{
	pthread_mutex_lock(&map_lock);
}

static void after_fork_parent(void)
{
	pthread_mutex_unlock(&map_lock);
}

/*
 * The child has the parent's memory but none of its kernel's threads:
 * the kernel is not usable here.  Its sockets fail with ENETDOWN (close
 * works), new ones too; the parent keeps its kernel and sockets.
 */
static void after_fork_child(void)
{
	__atomic_store_n(&preload_forked, 1, __ATOMIC_RELAXED);
	pthread_mutex_init(&map_lock, NULL);
}

int fdmap_vfork_child(void)
{
	/* A fork child has its own memory and says so (preload_forked). */
	return !__atomic_load_n(&preload_forked, __ATOMIC_RELAXED) &&
	       getpid() != owner;
}

int fdmap_init(void)
{
	struct rlimit rl;
	long size = 1 << 16;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY &&
	    (long)rl.rlim_max > size)
		size = rl.rlim_max;
	if (size > (1 << 20))
		size = 1 << 20;
	map = calloc(size, sizeof(*map));
	if (!map)
		return -ENOMEM;
	map_size = (int)size;
	owner = getpid();
	kep = (int)ksys(LKL__NR_epoll_create1, 0, 0, 0, 0, 0, 0);
	if (kep < 0)
		return kep;
	if (pthread_create(&poller, NULL, poller_main, NULL))
		return -EAGAIN;
	pthread_setname_np(poller, "lkl-preload");
	poller_started = 1;
	pthread_atfork(before_fork, after_fork_parent, after_fork_child);
	return 0;
}

void fdmap_fini(void)
{
	/* The halt made the poller's epoll_pwait fail. */
	if (poller_started)
		pthread_join(poller, NULL);
	poller_started = 0;
}

int fdmap_is_lkl(int fd)
{
	return fd >= 0 && fd < map_size &&
	       __atomic_load_n(&map[fd], __ATOMIC_ACQUIRE) != NULL;
}

struct lsock *fdmap_get(int fd)
{
	struct lsock *s;

	if (!fdmap_is_lkl(fd))
		return NULL;
	pthread_mutex_lock(&map_lock);
	s = map[fd];
	if (s)
		s->refs++;
	pthread_mutex_unlock(&map_lock);
	return s;
}

int fdmap_lookup(int fd, struct lsock **s)
{
	*s = NULL;
	if (!fdmap_is_lkl(fd))
		return 0;
	if (__atomic_load_n(&preload_forked, __ATOMIC_RELAXED)) {
		errno = ENETDOWN;
		return -1;
	}
	*s = fdmap_get(fd);
	return *s ? 1 : 0;
}

void fdmap_put(struct lsock *s)
{
	int last;

	pthread_mutex_lock(&map_lock);
	last = --s->refs == 0;
	if (last) {
		slots[s->slot] = NULL;
		gens[s->slot]++;
	}
	pthread_mutex_unlock(&map_lock);
	if (!last)
		return;
	/* Closing kfd also takes it out of the poller's epoll. */
	ksys(LKL__NR_close, s->kfd, 0, 0, 0, 0, 0);
	fd_set_internal(s->peer, 0);
	host_close(s->peer);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* map_lock held; -1 if out of memory. */
static int slot_alloc(struct lsock *s)
{
	int i;

	for (i = 0; i < nslots && slots[i]; i++)
		;
	if (i == nslots) {
		int n = nslots ? 2 * nslots : 256;
		struct lsock **ns = realloc(slots, n * sizeof(*ns));
		unsigned *ng;

		if (!ns)
			return -1;
		slots = ns;
		ng = realloc(gens, n * sizeof(*ng));
		if (!ng)
			return -1;
		gens = ng;
		memset(slots + nslots, 0, (n - nslots) * sizeof(*slots));
		memset(gens + nslots, 0, (n - nslots) * sizeof(*gens));
		nslots = n;
	}
	slots[i] = s;
	gens[i]++;
	s->slot = i;
	return i;
}

int fdmap_new(int kfd, int cloexec)
{
	struct lkl_epoll_event ev;
	struct lsock *s;
	int sv[2], one = 1, err;
	uint64_t key;

	if (host_socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		err = errno;
		goto fail;
	}
	if (sv[0] >= map_size) {
		host_close(sv[0]);
		host_close(sv[1]);
		err = EMFILE;
		goto fail;
	}
	if (!cloexec)
		host_fcntl(sv[0], F_SETFD, 0);
	/* The smallest send buffer: one chunk makes u not writable. */
	host_setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &one, sizeof(one));
	s = calloc(1, sizeof(*s));
	if (!s) {
		host_close(sv[0]);
		host_close(sv[1]);
		err = ENOMEM;
		goto fail;
	}
	s->kfd = kfd;
	s->host = sv[0];
	s->peer = sv[1];
	fd_set_internal(sv[1], 1);
	s->refs = 1;
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_lock(&map_lock);
	if (slot_alloc(s) < 0) {
		pthread_mutex_unlock(&map_lock);
		host_close(sv[0]);
		host_close(sv[1]);
		free(s);
		err = ENOMEM;
		goto fail;
	}
	key = (uint64_t)gens[s->slot] << 32 | (uint32_t)s->slot;
	__atomic_store_n(&map[sv[0]], s, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&map_lock);

	ev.events = LKL_EPOLLIN | LKL_EPOLLOUT | LKL_EPOLLRDHUP | LKL_EPOLLET;
	ev.data = key;
	ksys(LKL__NR_epoll_ctl, kep, LKL_EPOLL_CTL_ADD, kfd, (long)&ev, 0, 0);
	lsock_sync(s);
	return sv[0];
fail:
	ksys(LKL__NR_close, kfd, 0, 0, 0, 0, 0);
	errno = err;
	return -1;
}

void fdmap_alias(int newfd, struct lsock *s)
{
	if (newfd < 0 || newfd >= map_size)
		return;
	pthread_mutex_lock(&map_lock);
	s->refs++;
	if (s->host < 0) {
		pthread_mutex_lock(&s->lock);
		s->host = newfd;
		pthread_mutex_unlock(&s->lock);
	}
	__atomic_store_n(&map[newfd], s, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&map_lock);
}

void fdmap_forget(int fd)
{
	struct lsock *s;
	int i;

	if (!fdmap_is_lkl(fd) || fdmap_vfork_child())
		return;		/* a vfork child: the map is the parent's */
	pthread_mutex_lock(&map_lock);
	s = map[fd];
	__atomic_store_n(&map[fd], NULL, __ATOMIC_RELEASE);
	if (__atomic_load_n(&preload_forked, __ATOMIC_RELAXED)) {
		/*
		 * Not the child's kernel: keep the parent's socket alone
		 * (the number is free for the child's own files now), and
		 * never take s->lock here, which the poller may have held
		 * when the parent forked (no thread of the child would ever
		 * release it).
		 */
		pthread_mutex_unlock(&map_lock);
		return;
	}
	if (s && s->host == fd) {
		/*
		 * Another alias (a dup) takes over; rare, so a scan.  Under
		 * s->lock: no sync still uses fd once it is closed.
		 */
		pthread_mutex_lock(&s->lock);
		s->host = -1;
		for (i = 0; s->refs > 1 && i < map_size; i++)
			if (map[i] == s) {
				s->host = i;
				break;
			}
		pthread_mutex_unlock(&s->lock);
	}
	pthread_mutex_unlock(&map_lock);
	if (s)
		fdmap_put(s);
}
