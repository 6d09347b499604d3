/*
 * The host clock and one-shot timers behind the kernel's clocksource and
 * clockevent (kernel/time.c): one thread per timer, reused for every
 * expiry.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <time.h>

#include "posix.h"

unsigned long long host_time(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

struct lkl_timer {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned long long deadline;	/* 0: not armed */
	int stop;
	void (*fn)(void *);
	void *arg;
};

static void *timer_thread(void *p)
{
	struct lkl_timer *t = p;

	host_apply_pinning();
	/* Expiries are the kernel's clock: ask for no slack. */
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	pthread_mutex_lock(&t->lock);
	while (!t->stop) {
		unsigned long long now;
		struct timespec ts;

		if (!t->deadline) {
			pthread_cond_wait(&t->cond, &t->lock);
			continue;
		}
		now = host_time();
		if (now >= t->deadline) {
			t->deadline = 0;
			pthread_mutex_unlock(&t->lock);
			t->fn(t->arg);
			pthread_mutex_lock(&t->lock);
			continue;
		}
		ts.tv_sec = t->deadline / 1000000000ULL;
		ts.tv_nsec = t->deadline % 1000000000ULL;
		pthread_cond_timedwait(&t->cond, &t->lock, &ts);
	}
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

struct lkl_timer *host_timer_alloc(void (*fn)(void *), void *arg)
{
	struct lkl_timer *t = calloc(1, sizeof(*t));
	pthread_condattr_t attr;
	sigset_t all, old;

	if (!t)
		return NULL;
	t->fn = fn;
	t->arg = arg;
	pthread_mutex_init(&t->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&t->cond, &attr);
	pthread_condattr_destroy(&attr);

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	if (pthread_create(&t->thread, NULL, timer_thread, t) != 0) {
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		pthread_cond_destroy(&t->cond);
		pthread_mutex_destroy(&t->lock);
		free(t);
		return NULL;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return t;
}

int host_timer_set_oneshot(struct lkl_timer *t, unsigned long delta)
{
	pthread_mutex_lock(&t->lock);
	t->deadline = host_time() + (delta ? delta : 1);
	pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->lock);
	return 0;
}

void host_timer_cancel(struct lkl_timer *t)
{
	pthread_mutex_lock(&t->lock);
	t->deadline = 0;
	pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

void host_timer_free(struct lkl_timer *t)
{
	pthread_mutex_lock(&t->lock);
	t->stop = 1;
	pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->lock);
	pthread_join(t->thread, NULL);
	pthread_cond_destroy(&t->cond);
	pthread_mutex_destroy(&t->lock);
	free(t);
}
