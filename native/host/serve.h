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
	void *arg;
	int busy;		/* one waiting thread serves at a time */
	/* epoll_wait failures (each logged once); after one, none serve. */
	unsigned long errors;
	int failed;
};

/* Offer srv to sleeping syscall threads (NULL: withdraw it). */
void lkl_host_set_server(struct lkl_host_server *srv);

#endif
