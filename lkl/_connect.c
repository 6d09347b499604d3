/*
 * A blocking connect() run on a helper thread, for the main thread.
 *
 * Python runs signal handlers on the main thread only, so there a
 * blocking connect must not sleep in the kernel for long: the main
 * thread waits for the helper in slices and runs the handlers in between.
 * Making the connect non-blocking instead would set O_NONBLOCK on the
 * socket's file description, which every thread and every dup of the fd
 * shares: another thread's blocking call could then fail with EAGAIN.
 *
 * If the waiter gives up (a handler raised), the connection goes on in
 * the kernel, as after an interrupted connect(2); the detached helper
 * is done when the connect is (or at halt, with -ENODEV).  A helper that
 * is done waits for the next connect (one at a time: a new thread and its
 * shadow task cost far more than the connect itself); a second idle one
 * leaves.  Like _glue.c, this file sees libc and the exported lkl
 * headers, never Python.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lkl/asm/unistd.h>
#include <lkl/asm-generic/errno.h>

#include "_connect.h"
#include "_glue.h"

/* The largest socket address (struct sockaddr_storage). */
#define CONNECT_ADDR_MAX 128

struct glue_connect {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int refs;		/* the helper's and the waiter's */
	int done;
	long ret;
	int kfd, len;
	char addr[CONNECT_ADDR_MAX];
};

static void put(struct glue_connect *c)
{
	int last;

	pthread_mutex_lock(&c->lock);
	last = --c->refs == 0;
	pthread_mutex_unlock(&c->lock);
	if (last) {
		pthread_cond_destroy(&c->cond);
		pthread_mutex_destroy(&c->lock);
		free(c);
	}
}

/* The idle helper, if any, and the connect handed to it. */
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_cond = PTHREAD_COND_INITIALIZER;
static int pool_idle;
static struct glue_connect *pool_job;
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

static void pool_after_fork(void)
{
	/* The helpers did not survive the fork. */
	pthread_mutex_init(&pool_lock, NULL);
	pthread_cond_init(&pool_cond, NULL);
	pool_idle = 0;
	pool_job = NULL;
}

static void pool_register(void)
{
	pthread_atfork(NULL, NULL, pool_after_fork);
}

static void run(struct glue_connect *c)
{
	long params[6] = { c->kfd, (long)c->addr, c->len, 0, 0, 0 };
	long ret;

	ret = glue_syscall(LKL__NR_connect, params);
	pthread_mutex_lock(&c->lock);
	c->ret = ret;
	c->done = 1;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	put(c);
}

static void *helper_main(void *arg)
{
	struct glue_connect *c = arg;

	for (;;) {
		run(c);
		pthread_mutex_lock(&pool_lock);
		if (pool_idle) {
			pthread_mutex_unlock(&pool_lock);
			return NULL;
		}
		pool_idle = 1;
		while (!pool_job)
			pthread_cond_wait(&pool_cond, &pool_lock);
		c = pool_job;
		pool_job = NULL;
		pool_idle = 0;
		pthread_mutex_unlock(&pool_lock);
	}
}

/* Hand c to the idle helper; 0 if there is none. */
static int pool_hand_over(struct glue_connect *c)
{
	int handed = 0;

	pthread_mutex_lock(&pool_lock);
	if (pool_idle && !pool_job) {
		pool_job = c;
		pthread_cond_signal(&pool_cond);
		handed = 1;
	}
	pthread_mutex_unlock(&pool_lock);
	return handed;
}

int glue_connect_start(int kfd, const void *addr, int len,
		       struct glue_connect **out)
{
	struct glue_connect *c;
	pthread_condattr_t attr;
	pthread_attr_t tattr;
	pthread_t thread;
	sigset_t all, old;
	int err;

	if (glue_forked())
		return -LKL_ENODEV;
	if (len < 0 || len > CONNECT_ADDR_MAX)
		return -EINVAL;
	pthread_once(&pool_once, pool_register);
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cond, &attr);
	pthread_condattr_destroy(&attr);
	c->refs = 2;
	c->kfd = kfd;
	c->len = len;
	memcpy(c->addr, addr, len);
	if (pool_hand_over(c)) {
		*out = c;
		return 0;
	}

	pthread_attr_init(&tattr);
	pthread_attr_setdetachstate(&tattr, PTHREAD_CREATE_DETACHED);
	/* Signals stay with the application's threads. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(&thread, &tattr, helper_main, c);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&tattr);
	if (err) {
		c->refs = 1;
		put(c);
		return -err;
	}
	*out = c;
	return 0;
}

int glue_connect_wait(struct glue_connect *c, double timeout, long *ret)
{
	struct timespec deadline;
	int done;

	glue_deadline(&deadline, CLOCK_MONOTONIC, timeout);
	pthread_mutex_lock(&c->lock);
	while (!c->done)
		if (pthread_cond_timedwait(&c->cond, &c->lock, &deadline))
			break;
	done = c->done;
	if (done)
		*ret = c->ret;
	pthread_mutex_unlock(&c->lock);
	return done;
}

void glue_connect_put(struct glue_connect *c)
{
	put(c);
}
