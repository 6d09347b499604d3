/*
 * Host semaphores: the kernel's only blocking primitive.  A task's host
 * thread sleeps on one, and a context switch is a post to the next
 * task's (kernel/threads.c); the CPU lock is one too (kernel/cpu.c).
 *
 * A hand-off between threads on different host CPUs costs a futex sleep
 * and a cross-CPU wakeup (~30 us here), more than the work between two
 * hand-offs when a sender and a receiver pass the CPU lock back and
 * forth.  So a down first spins, for as long as the waits on this
 * semaphore were recently short (lkl_host_spin_next), and never when its
 * thread has one CPU: there the poster needs the CPU the spin would burn.
 */
#include <errno.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "posix.h"

void host_check_sem(struct lkl_sem *s, const char *op, void *caller)
{
	if (!s || s->magic != SEM_MAGIC) {
		fprintf(stderr, "lkl: %s on a %s semaphore %p from %p\n", op,
			s ? "freed" : "NULL", (void *)s, caller);
		abort();
	}
}

struct lkl_sem *host_sem_alloc(int count)
{
	struct lkl_sem *s = malloc(sizeof(*s));

	if (s && sem_init(&s->sem, 0, count) != 0) {
		free(s);
		return NULL;
	}
	if (s) {
		s->magic = SEM_MAGIC;
		s->spin_ns = 0;
	}
	return s;
}

void host_sem_free(struct lkl_sem *s)
{
	host_check_sem(s, "free", __builtin_return_address(0));
	s->magic = 0;
	sem_destroy(&s->sem);
	free(s);
}

void host_sem_up(struct lkl_sem *s)
{
	struct lkl_host_server *srv;

	host_check_sem(s, "up", __builtin_return_address(0));
	sem_post(&s->sem);
	/* No device serves: nobody waits anywhere but on the semaphore. */
	srv = __atomic_load_n(&host_server, __ATOMIC_ACQUIRE);
	if (srv)
		host_serve_posted(srv, s);
}

/* The longest a down spins before it sleeps. */
#define SEM_SPIN_MAX_NS	50000

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

/* Whether s could be taken within spin_ns of t0, without sleeping. */
static int spin_down(struct lkl_sem *s, unsigned int spin_ns, uint64_t t0)
{
	uint64_t end = t0 + spin_ns;
	unsigned int i = 0;
	int v;

	for (;;) {
		if (!sem_getvalue(&s->sem, &v) && v > 0 &&
		    sem_trywait(&s->sem) == 0)
			return 1;
		cpu_relax();
		/* The clock costs more than a look: read it now and then. */
		if (!(++i & 15) && host_time() >= end)
			return 0;
	}
}

static void sleep_down(struct lkl_sem *s)
{
	while (sem_wait(&s->sem) != 0 && errno == EINTR)
		;
}

void host_sem_down(struct lkl_sem *s)
{
	unsigned int spin;
	uint64_t t0;
	int hit;

	host_check_sem(s, "down", __builtin_return_address(0));
	if (sem_trywait(&s->sem) == 0)
		return;
	if (host_thread_alone_on_cpu()) {
		sleep_down(s);
		return;
	}
	spin = __atomic_load_n(&s->spin_ns, __ATOMIC_RELAXED);
	t0 = host_time();
	hit = spin && spin_down(s, spin, t0);
	if (!hit)
		sleep_down(s);
	__atomic_store_n(&s->spin_ns,
			 lkl_host_spin_next(spin, SEM_SPIN_MAX_NS,
					    host_time() - t0, hit),
			 __ATOMIC_RELAXED);
}

int host_sem_trydown(struct lkl_sem *s)
{
	return sem_trywait(&s->sem) == 0;
}
