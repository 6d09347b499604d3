/*
 * Host semaphores: the kernel's only blocking primitive.  A task's host
 * thread sleeps on one, and a context switch is a post to the next
 * task's (kernel/threads.c); the CPU lock is one too (kernel/cpu.c).
 */
#include <errno.h>
#include <semaphore.h>
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
	if (s)
		s->magic = SEM_MAGIC;
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

void host_sem_down(struct lkl_sem *s)
{
	host_check_sem(s, "down", __builtin_return_address(0));
	while (sem_wait(&s->sem) != 0 && errno == EINTR)
		;
}

int host_sem_trydown(struct lkl_sem *s)
{
	return sem_trywait(&s->sem) == 0;
}
