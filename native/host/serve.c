/*
 * Device work on a sleeping direct syscall's thread (serve.h): while its
 * task sleeps, the thread waits on the device's backend as well as on
 * its semaphore, and receives what arrives itself.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "posix.h"

struct lkl_host_server *host_server;

/*
 * The semaphore a thread waits on while it serves, for host_sem_up: a
 * post to it also writes the server's wake_fd.  Compared, never
 * dereferenced, after the post: the woken thread may free it at once.
 */
static struct lkl_sem *serving_sem;
/* The semaphore this thread serves on: its own posts need no wake_fd. */
static __thread struct lkl_sem *own_serving_sem;

void lkl_host_set_server(struct lkl_host_server *srv)
{
	__atomic_store_n(&host_server, srv, __ATOMIC_RELEASE);
}

void host_serve_posted(struct lkl_host_server *srv, struct lkl_sem *s)
{
	/*
	 * The serving thread itself (the frame it received woke its own
	 * task) checks the semaphore before it waits again.
	 */
	if (own_serving_sem == s)
		return;
	/* Pairs with the fence in host_sem_down_serving: one sees the other. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (__atomic_load_n(&serving_sem, __ATOMIC_RELAXED) == s) {
		uint64_t one = 1;

		/* Full (EAGAIN) still wakes the waiter. */
		(void)!write(srv->wake_fd, &one, sizeof(one));
	}
}

/*
 * The server's epoll broke (it cannot on a valid epoll fd: this is a
 * bug or a closed fd).  Say so once, count it, and serve no more: the
 * device's poller receives instead, and waiters sleep on their
 * semaphores as usual.
 */
static void serve_failed(struct lkl_host_server *srv, int err)
{
	__atomic_fetch_add(&srv->errors, 1, __ATOMIC_RELAXED);
	if (!__atomic_exchange_n(&srv->failed, 1, __ATOMIC_RELAXED))
		fprintf(stderr, "lkl: direct_rx: epoll_wait failed: %s; "
			"the device's poller receives from now on\n",
			strerror(err));
}

/* Below this a spin is not worth its syscalls: sleep instead. */
#define SPIN_MIN_NS	1000

unsigned int lkl_host_spin_next(unsigned int spin_ns, unsigned int max_ns,
				uint64_t waited_ns, int hit)
{
	uint64_t want = waited_ns * 2;

	if (spin_ns > max_ns)
		spin_ns = max_ns;
	if (want > max_ns)
		want = max_ns;
	if (hit)			/* it paid: keep at least as much */
		return want > spin_ns ? want : spin_ns;
	if (waited_ns <= max_ns)	/* a longer spin would have caught it */
		return want;
	/* Nothing within the cap: traffic is not recent, spin less. */
	spin_ns /= 2;
	return spin_ns < SPIN_MIN_NS ? 0 : spin_ns;
}

/*
 * Busy poll before sleeping: look at the backend and the wake eventfd
 * without blocking until the semaphore is posted, an event comes or
 * srv->spin_ns are over.  The number of events, 0 when the spin ran
 * out, -1 when the semaphore was posted.
 */
static int spin_wait(struct lkl_host_server *srv, struct lkl_sem *s,
		     struct epoll_event *ev, int nev, uint64_t t0)
{
	uint64_t end = t0 + srv->spin_ns;
	int yield = host_thread_alone_on_cpu(), k, v;

	__atomic_fetch_add(&srv->spins, 1, __ATOMIC_RELAXED);
	do {
		if (!sem_getvalue(&s->sem, &v) && v > 0)
			return -1;
		k = epoll_wait(srv->epfd, ev, nev, 0);
		if (k > 0)
			return k;
		if (yield)
			sched_yield();
	} while (host_time() < end);
	return 0;
}

void host_sem_down_serving(struct lkl_sem *s)
{
	struct lkl_host_server *srv = __atomic_load_n(&host_server,
						      __ATOMIC_ACQUIRE);
	int serving = 1, quiet = 0;

	host_check_sem(s, "down", __builtin_return_address(0));
	if (!srv || __atomic_load_n(&srv->failed, __ATOMIC_RELAXED) ||
	    __atomic_exchange_n(&srv->busy, 1, __ATOMIC_ACQUIRE)) {
		host_sem_down(s);
		return;
	}
	__atomic_store_n(&serving_sem, s, __ATOMIC_RELAXED);
	own_serving_sem = s;
	/* Pairs with host_serve_posted: a post after this writes wake_fd. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	while (serving && sem_trywait(&s->sem) != 0) {
		unsigned int max = __atomic_load_n(&srv->spin_max_us,
						   __ATOMIC_RELAXED) * 1000U;
		uint64_t n, t0 = max ? host_time() : 0, t1;
		struct epoll_event ev[2];
		int i, k = 0, hit = 0;

		if (max && srv->spin_ns) {
			if (!quiet && srv->quiet) {
				srv->quiet(srv->arg, 1);
				quiet = 1;
			}
			k = spin_wait(srv, s, ev, 2, t0);
			hit = k != 0;
			t1 = host_time();
			__atomic_fetch_add(&srv->spin_total_ns, t1 - t0,
					   __ATOMIC_RELAXED);
			__atomic_fetch_add(&srv->spin_hits, hit, __ATOMIC_RELAXED);
			if (k < 0) {
				srv->spin_ns = lkl_host_spin_next(srv->spin_ns,
								  max, t1 - t0, 1);
				continue;	/* posted */
			}
		}
		if (!k)
			k = epoll_wait(srv->epfd, ev, 2, -1);
		if (max)
			srv->spin_ns = lkl_host_spin_next(srv->spin_ns, max,
							  host_time() - t0, hit);
		if (k < 0 && errno != EINTR) {
			serve_failed(srv, errno);
			serving = 0;
		}
		for (i = 0; i < k; i++) {
			if (ev[i].data.u32 == LKL_SERVE_WAKE)
				(void)!read(srv->wake_fd, &n, sizeof(n));
			else if (!srv->serve(srv->arg))
				serving = 0;	/* the poller takes over */
		}
	}
	if (quiet)
		srv->quiet(srv->arg, serving ? 0 : -1);
	own_serving_sem = NULL;
	__atomic_store_n(&serving_sem, NULL, __ATOMIC_RELAXED);
	__atomic_store_n(&srv->busy, 0, __ATOMIC_RELEASE);
	if (!serving)
		host_sem_down(s);
}
