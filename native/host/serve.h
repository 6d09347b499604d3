/*
 * Device work that a sleeping syscall's host thread may do itself.
 *
 * A direct-mode syscall that sleeps leaves its host thread waiting for
 * the task to be scheduled again.  If that thread waits on the device's
 * backend fd too, the frame that wakes the task can be received on the
 * very thread that will run it: one host wakeup (and, on one core, one
 * context switch) less than waking the device's poller, which then wakes
 * the thread.  serve.c does the waiting (sem_down_serving), one
 * device (virtio_net.c) offers the work.
 */
#ifndef LKL_HOST_SERVE_H
#define LKL_HOST_SERVE_H

#include <stdint.h>

/* epoll_event.data.u32 of the two entries of lkl_host_server.epfd. */
enum { LKL_SERVE_WAKE, LKL_SERVE_WORK };

struct lkl_host_server {
	/*
	 * epoll with the backend fd (EPOLLIN | EPOLLEXCLUSIVE, registered
	 * before the poller's own exclusive entry, so the host wakes a
	 * thread waiting here instead of the poller) and wake_fd.
	 */
	int epfd;
	int wake_fd;		/* eventfd: the waiter's semaphore was posted */
	/* The backend is readable: receive; 0 if it cannot go on now. */
	int (*serve)(void *arg);
	/*
	 * A thread starts (1) or has stopped (0) busy polling: the device
	 * may stop its own poller from waiting for what the spinning thread
	 * receives, for a bounded time after it stopped.  -1: it stopped
	 * because serve() said the poller must take over, at once.  Called
	 * in pairs (1, then 0 or -1) by the same thread.
	 */
	void (*quiet)(void *arg, int on);
	void *arg;
	int busy;		/* one waiting thread serves at a time */
	/*
	 * Adaptive busy polling: spin_max_us caps each spin (0: never).
	 * spin_ns is the spin the next wait gets, learnt from the waits
	 * before it (lkl_host_spin_next); only the serving thread (busy)
	 * touches it.
	 */
	int spin_max_us;
	unsigned int spin_ns;
	uint64_t spins, spin_hits, spin_total_ns;	/* statistics */
	/* epoll_wait failures (each logged once); after one, none serve. */
	unsigned long errors;
	int failed;
};

/*
 * The spin the next wait gets, in ns, from this one's: it spun spin_ns,
 * the event that ended it came waited_ns after it began (during the spin
 * if hit), max_ns caps it.  Traffic that answers within the cap keeps a
 * spin of twice the answer's time; a wait longer than the cap halves the
 * spin, so an idle device stops spinning after a few waits and starts
 * again after one quick answer.  Always 0 <= result <= max_ns.
 */
unsigned int lkl_host_spin_next(unsigned int spin_ns, unsigned int max_ns,
				uint64_t waited_ns, int hit);

/* Offer srv to sleeping syscall threads (NULL: withdraw it). */
void lkl_host_set_server(struct lkl_host_server *srv);

#endif
