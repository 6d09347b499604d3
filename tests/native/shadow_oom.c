/*
 * Out of host memory on a thread's first syscall: the shadow it needs
 * (a record and two semaphores) cannot be made.  The call returns
 * -ENOMEM, nothing crashes, and the thread's next call, with memory
 * back, gets its shadow and works.  The host ops fail on the Nth
 * allocation of the one thread under test only.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <string.h>

#include <lkl/linux/errno.h>

#include "test_util.h"

static struct lkl_host_ops real;

/* Per thread: which allocation of each kind fails (0: none), and counts. */
static __thread int fail_sem_at, fail_mem_at, sem_calls, mem_calls;

static struct lkl_sem *failing_sem_alloc(int count)
{
	if (fail_sem_at && ++sem_calls == fail_sem_at)
		return NULL;
	return real.sem_alloc(count);
}

static void *failing_mem_alloc(unsigned long size)
{
	if (fail_mem_at && ++mem_calls == fail_mem_at)
		return NULL;
	return real.mem_alloc(size);
}

struct oom_case {
	const char *what;
	int sem_at, mem_at;
	long first, second;	/* getpid with the failure armed, then without */
};

static void *run_case(void *arg)
{
	struct oom_case *c = arg;

	fail_sem_at = c->sem_at;
	fail_mem_at = c->mem_at;
	c->first = sys(LKL__NR_getpid, 0);
	fail_sem_at = fail_mem_at = 0;
	c->second = sys(LKL__NR_getpid, 0);
	return NULL;
}

int main(void)
{
	struct oom_case cases[] = {
		{ .what = "record", .mem_at = 1 },
		{ .what = "first semaphore", .sem_at = 1 },
		{ .what = "second semaphore", .sem_at = 2 },
	};
	unsigned int i;

	real = lkl_host_ops;
	lkl_host_ops.sem_alloc = failing_sem_alloc;
	lkl_host_ops.mem_alloc = failing_mem_alloc;
	test_boot(NULL);

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		pthread_t t;

		pthread_create(&t, NULL, run_case, &cases[i]);
		pthread_join(t, NULL);
		CHECK(cases[i].first == -LKL_ENOMEM, "%s: first call %ld",
		      cases[i].what, cases[i].first);
		CHECK(cases[i].second == 1, "%s: call after the failure %ld",
		      cases[i].what, cases[i].second);
	}
	PASS("a shadow that cannot be allocated fails with ENOMEM");
	CHECK_OK(lkl_sys_halt());
	PASS("halt");
	return 0;
}
