/*
 * Device work on a sleeping direct syscall's thread (serve.h): while its
 * task sleeps, the thread waits on the device's backend as well as on
 * its semaphore, and receives what arrives itself.
 */
#include <errno.h>
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

void lkl_host_set_server(struct lkl_host_server *srv)
{
	__atomic_store_n(&host_server, srv, __ATOMIC_RELEASE);
}

void host_serve_posted(struct lkl_host_server *srv, struct lkl_sem *s)
{
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

void host_sem_down_serving(struct lkl_sem *s)
{
	struct lkl_host_server *srv = __atomic_load_n(&host_server,
						      __ATOMIC_ACQUIRE);
	int serving = 1;

	host_check_sem(s, "down", __builtin_return_address(0));
	if (!srv || __atomic_load_n(&srv->failed, __ATOMIC_RELAXED) ||
	    __atomic_exchange_n(&srv->busy, 1, __ATOMIC_ACQUIRE)) {
		host_sem_down(s);
		return;
	}
	__atomic_store_n(&serving_sem, s, __ATOMIC_RELAXED);
	/* Pairs with host_serve_posted: a post after this writes wake_fd. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	while (serving && sem_trywait(&s->sem) != 0) {
		struct epoll_event ev[2];
		uint64_t n;
		int i, k;

		k = epoll_wait(srv->epfd, ev, 2, -1);
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
	__atomic_store_n(&serving_sem, NULL, __ATOMIC_RELAXED);
	__atomic_store_n(&srv->busy, 0, __ATOMIC_RELEASE);
	if (!serving)
		host_sem_down(s);
}
