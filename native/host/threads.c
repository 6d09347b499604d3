/*
 * Host threads for kernel tasks (kernel/threads.c): creation with every
 * host signal blocked, an exit that leaves from deep inside kernel code,
 * thread-local storage, and pinning to one CPU.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdlib.h>

#include "posix.h"

/* -1, or the CPU that every thread created here is pinned to. */
static int pin_cpu = -1;

int lkl_host_set_pin_cpu(int cpu)
{
	if (cpu < -1 || cpu >= CPU_SETSIZE)
		return -EINVAL;
	__atomic_store_n(&pin_cpu, cpu, __ATOMIC_SEQ_CST);
	return 0;
}

void host_apply_pinning(void)
{
	int cpu = __atomic_load_n(&pin_cpu, __ATOMIC_SEQ_CST);
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

struct thread_start {
	void (*fn)(void *);
	void *arg;
};

/*
 * thread_exit leaves from deep inside kernel code, which has no unwind
 * tables, so it jumps back to the thread's first frame instead of
 * unwinding through pthread_exit.
 */
static __thread jmp_buf *exit_point;

static void *thread_trampoline(void *p)
{
	struct thread_start start = *(struct thread_start *)p;
	jmp_buf here;

	free(p);
	host_apply_pinning();
	exit_point = &here;
	if (!setjmp(here))
		start.fn(start.arg);
	return NULL;
}

/*
 * A kernel thread's stack: 32 times a real kernel's 16 KiB, not glibc's
 * 8 MiB default, which a process under mlockall(MCL_FUTURE) (packetdrill,
 * real-time programs) has to fault in and lock whole before the thread
 * runs: 3-5 ms on every new shadow thread's first syscall.
 */
#define KERNEL_THREAD_STACK	(512 << 10)

lkl_thread_t host_thread_create(void (*fn)(void *), void *arg)
{
	struct thread_start *start = malloc(sizeof(*start));
	sigset_t all, old;
	pthread_attr_t attr;
	pthread_t thread;
	int err;

	if (!start)
		return 0;
	start->fn = fn;
	start->arg = arg;

	/*
	 * Kernel threads take no host signals: they belong to the
	 * application.  Faults stay deliverable: a guarded user copy
	 * (fault.c) must reach its fixup, and a blocked SIGSEGV kills.
	 */
	sigfillset(&all);
	sigdelset(&all, SIGSEGV);
	sigdelset(&all, SIGBUS);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_attr_init(&attr);
	if (!err)
		err = pthread_attr_setstacksize(&attr, KERNEL_THREAD_STACK);
	if (!err)
		err = pthread_create(&thread, &attr, thread_trampoline, start);
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		free(start);
		return 0;
	}
	return (lkl_thread_t)thread;
}

void host_thread_exit(void)
{
	longjmp(*exit_point, 1);
}

int host_thread_join(lkl_thread_t thread)
{
	return -pthread_join((pthread_t)thread, NULL);
}

lkl_thread_t host_thread_self(void)
{
	return (lkl_thread_t)pthread_self();
}

/* ---- thread-local storage ---------------------------------------------- */

struct lkl_tls_key {
	pthread_key_t key;
};

struct lkl_tls_key *host_tls_alloc(void (*destructor)(void *))
{
	struct lkl_tls_key *k = malloc(sizeof(*k));

	if (k && pthread_key_create(&k->key, destructor) != 0) {
		free(k);
		return NULL;
	}
	return k;
}

void host_tls_free(struct lkl_tls_key *k)
{
	pthread_key_delete(k->key);
	free(k);
}

int host_tls_set(struct lkl_tls_key *k, void *data)
{
	return -pthread_setspecific(k->key, data);
}

void *host_tls_get(struct lkl_tls_key *k)
{
	return pthread_getspecific(k->key);
}

/*
 * Whether this thread may run on one host CPU only.  Then whatever it
 * waits for (the peer, or the device's poller) needs that CPU: a spin
 * must yield it, or not happen.  Learnt once per thread.
 */
int host_thread_alone_on_cpu(void)
{
	static __thread int known, alone;
	cpu_set_t set;

	if (!known) {
		known = 1;
		alone = !sched_getaffinity(0, sizeof(set), &set) &&
			CPU_COUNT(&set) == 1;
	}
	return alone;
}
