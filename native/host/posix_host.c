/*
 * The POSIX host operations: what the kernel port needs from the host
 * process (native/arch/lkl/include/uapi/asm/host_ops.h), built on
 * pthreads, POSIX semaphores and the monotonic clock.  This file sees
 * libc only, never kernel headers.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include <lkl/lkl.h>

#include "fault.h"
#include "iomem.h"
#include "serve.h"

/* -1, or the CPU that every thread created here is pinned to. */
static int pin_cpu = -1;

int lkl_host_set_pin_cpu(int cpu)
{
	if (cpu < -1 || cpu >= CPU_SETSIZE)
		return -EINVAL;
	__atomic_store_n(&pin_cpu, cpu, __ATOMIC_SEQ_CST);
	return 0;
}

static void apply_pinning(void)
{
	int cpu = __atomic_load_n(&pin_cpu, __ATOMIC_SEQ_CST);
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

static void host_print(const char *str, int len)
{
	ssize_t ret = write(STDERR_FILENO, str, len);

	(void)ret;
}

static void host_panic(void)
{
	fprintf(stderr, "lkl: kernel panic\n");
	abort();
}

/* ---- semaphores --------------------------------------------------------- */

/* A freed semaphore must never be used again: say who did, and stop. */
#define SEM_MAGIC	0x6c6b6c73	/* "lkls" */

struct lkl_sem {
	sem_t sem;
	unsigned int magic;
};

/*
 * The semaphore a thread waits on while it serves device work (see
 * host_sem_down_serving), and what it serves.  A post to it also writes
 * the server's wake_fd.  Compared, never dereferenced, after the post:
 * the woken thread may free a semaphore at once.
 */
static struct lkl_sem *serving_sem;
static struct lkl_host_server *server;

static void check_sem(struct lkl_sem *s, const char *op, void *caller)
{
	if (s->magic != SEM_MAGIC) {
		fprintf(stderr, "lkl: %s on a freed semaphore %p from %p\n", op,
			(void *)s, caller);
		abort();
	}
}

static struct lkl_sem *host_sem_alloc(int count)
{
	struct lkl_sem *s = malloc(sizeof(*s));

	if (s && sem_init(&s->sem, 0, count) != 0) {
		free(s);
		return NULL;
	}
	if (s)
		s->magic = SEM_MAGIC;
	return s;
}

static void host_sem_free(struct lkl_sem *s)
{
	check_sem(s, "free", __builtin_return_address(0));
	s->magic = 0;
	sem_destroy(&s->sem);
	free(s);
}

static void host_sem_up(struct lkl_sem *s)
{
	struct lkl_host_server *srv;

	check_sem(s, "up", __builtin_return_address(0));
	sem_post(&s->sem);
	/* No device serves: nobody waits anywhere but on the semaphore. */
	srv = __atomic_load_n(&server, __ATOMIC_ACQUIRE);
	if (!srv)
		return;
	/* Pairs with the fence in host_sem_down_serving: one sees the other. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (__atomic_load_n(&serving_sem, __ATOMIC_RELAXED) == s) {
		uint64_t one = 1;

		/* Full (EAGAIN) still wakes the waiter. */
		(void)!write(srv->wake_fd, &one, sizeof(one));
	}
}

static void host_sem_down(struct lkl_sem *s)
{
	check_sem(s, "down", __builtin_return_address(0));
	while (sem_wait(&s->sem) != 0 && errno == EINTR)
		;
}

static int host_sem_trydown(struct lkl_sem *s)
{
	return sem_trywait(&s->sem) == 0;
}

/* ---- serving device work while a syscall sleeps (serve.h) --------------- */

void lkl_host_set_server(struct lkl_host_server *srv)
{
	__atomic_store_n(&server, srv, __ATOMIC_RELEASE);
}

static void host_sem_down_serving(struct lkl_sem *s)
{
	struct lkl_host_server *srv = __atomic_load_n(&server, __ATOMIC_ACQUIRE);
	int serving = 1;

	check_sem(s, "down", __builtin_return_address(0));
	if (!srv || __atomic_exchange_n(&srv->busy, 1, __ATOMIC_ACQUIRE)) {
		host_sem_down(s);
		return;
	}
	__atomic_store_n(&serving_sem, s, __ATOMIC_RELAXED);
	/* Pairs with host_sem_up: a post after this writes wake_fd. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	while (serving && sem_trywait(&s->sem) != 0) {
		struct epoll_event ev[2];
		uint64_t n;
		int i, k;

		k = epoll_wait(srv->epfd, ev, 2, -1);
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

/* ---- threads ------------------------------------------------------------ */

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
	apply_pinning();
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

static lkl_thread_t host_thread_create(void (*fn)(void *), void *arg)
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

static void host_thread_exit(void)
{
	longjmp(*exit_point, 1);
}

static int host_thread_join(lkl_thread_t thread)
{
	return -pthread_join((pthread_t)thread, NULL);
}

static lkl_thread_t host_thread_self(void)
{
	return (lkl_thread_t)pthread_self();
}

/* ---- thread-local storage ---------------------------------------------- */

struct lkl_tls_key {
	pthread_key_t key;
};

static struct lkl_tls_key *host_tls_alloc(void (*destructor)(void *))
{
	struct lkl_tls_key *k = malloc(sizeof(*k));

	if (k && pthread_key_create(&k->key, destructor) != 0) {
		free(k);
		return NULL;
	}
	return k;
}

static void host_tls_free(struct lkl_tls_key *k)
{
	pthread_key_delete(k->key);
	free(k);
}

static int host_tls_set(struct lkl_tls_key *k, void *data)
{
	return -pthread_setspecific(k->key, data);
}

static void *host_tls_get(struct lkl_tls_key *k)
{
	return pthread_getspecific(k->key);
}

/* ---- memory ------------------------------------------------------------- */

static void *host_mem_alloc(unsigned long size)
{
	return malloc(size);
}

static void host_mem_free(void *p)
{
	free(p);
}

/*
 * Untouched RAM costs nothing: pages become resident as the kernel uses
 * them.  Page frame numbers are host addresses / 4 KiB, and at boot the
 * kernel walks every pfn below its RAM as a hole: at the usual mmap
 * addresses (0x7f...) that walk alone takes ~40 ms.  So ask for a low
 * address first (64 GiB and up: above any brk heap, below the mmap area),
 * and take whatever the kernel gives if those are all in use.
 */
static void *host_ram_alloc(unsigned long size)
{
	const int prot = PROT_READ | PROT_WRITE;
	const int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
	unsigned long hint;
	void *p;

	for (hint = 64UL << 30; hint <= 1024UL << 30; hint += 64UL << 30) {
		p = mmap((void *)hint, size, prot, flags | MAP_FIXED_NOREPLACE,
			 -1, 0);
		if (p == (void *)hint)
			return p;
		if (p != MAP_FAILED)
			munmap(p, size);
	}
	p = mmap(NULL, size, prot, flags, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

static void host_ram_free(void *p, unsigned long size)
{
	munmap(p, size);
}

static unsigned long long host_time(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* ---- timers: one thread per timer, reused for every expiry ------------- */

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

	apply_pinning();
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

static struct lkl_timer *host_timer_alloc(void (*fn)(void *), void *arg)
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

static int host_timer_set_oneshot(struct lkl_timer *t, unsigned long delta)
{
	pthread_mutex_lock(&t->lock);
	t->deadline = host_time() + (delta ? delta : 1);
	pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->lock);
	return 0;
}

static void host_timer_cancel(struct lkl_timer *t)
{
	pthread_mutex_lock(&t->lock);
	t->deadline = 0;
	pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

static void host_timer_free(struct lkl_timer *t)
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

const char *lkl_strerror(int err)
{
	return strerror(err < 0 ? -err : err);
}

struct lkl_host_ops lkl_host_ops = {
	.print = host_print,
	.panic = host_panic,
	.sem_alloc = host_sem_alloc,
	.sem_free = host_sem_free,
	.sem_up = host_sem_up,
	.sem_down = host_sem_down,
	.sem_trydown = host_sem_trydown,
	.sem_down_serving = host_sem_down_serving,
	.thread_create = host_thread_create,
	.thread_exit = host_thread_exit,
	.thread_join = host_thread_join,
	.thread_self = host_thread_self,
	.tls_alloc = host_tls_alloc,
	.tls_free = host_tls_free,
	.tls_set = host_tls_set,
	.tls_get = host_tls_get,
	.mem_alloc = host_mem_alloc,
	.mem_free = host_mem_free,
	.ram_alloc = host_ram_alloc,
	.ram_free = host_ram_free,
	.time = host_time,
	.timer_alloc = host_timer_alloc,
	.timer_set_oneshot = host_timer_set_oneshot,
	.timer_cancel = host_timer_cancel,
	.timer_free = host_timer_free,
	.ioremap = lkl_iomem_map,
	.iomem_access = lkl_iomem_access,
	.memcpy = (void *(*)(void *, const void *, unsigned long))memcpy,
	.memset = (void *(*)(void *, int, unsigned long))memset,
	.memmove = (void *(*)(void *, const void *, unsigned long))memmove,
	.user_copy = host_user_copy,
	.user_clear = host_user_clear,
};
