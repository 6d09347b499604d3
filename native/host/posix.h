/*
 * The POSIX host operations (native/arch/lkl/include/uapi/asm/host_ops.h),
 * one mechanism a file, named after the kernel side each one serves:
 *
 *   threads.c  host threads (kernel/threads.c), TLS, CPU pinning
 *   sem.c      semaphores: how tasks sleep and switch (kernel/cpu.c,
 *              kernel/threads.c)
 *   serve.c    device work on a sleeping direct syscall's thread
 *              (kernel/syscalls.c, serve.h)
 *   time.c     the clock and one-shot timers (kernel/time.c)
 *   mem.c      host memory and the kernel's RAM (kernel/setup.c)
 *   host_ops.c the lkl_host_ops table, console and panic
 *
 * libc only, never kernel headers.
 */
#ifndef LKL_HOST_POSIX_H
#define LKL_HOST_POSIX_H

#include <semaphore.h>

#include <lkl/lkl.h>

#include "serve.h"

/* A freed semaphore must never be used again: say who did, and stop. */
#define SEM_MAGIC	0x6c6b6c73	/* "lkls" */

struct lkl_sem {
	sem_t sem;
	unsigned int magic;
	/* How long the next down spins before sleeping (sem.c). */
	unsigned int spin_ns;
};

/* sem.c */
void host_check_sem(struct lkl_sem *s, const char *op, void *caller);
struct lkl_sem *host_sem_alloc(int count);
void host_sem_free(struct lkl_sem *s);
void host_sem_up(struct lkl_sem *s);
void host_sem_down(struct lkl_sem *s);
int host_sem_trydown(struct lkl_sem *s);

/* serve.c: the server offered by a device, NULL if none. */
extern struct lkl_host_server *host_server;
/* s was posted while srv was offered: wake s's waiter if it serves. */
void host_serve_posted(struct lkl_host_server *srv, struct lkl_sem *s);
void host_sem_down_serving(struct lkl_sem *s);

/* threads.c */
void host_apply_pinning(void);
lkl_thread_t host_thread_create(void (*fn)(void *), void *arg);
void host_thread_exit(void);
int host_thread_join(lkl_thread_t thread);
lkl_thread_t host_thread_self(void);
int host_thread_alone_on_cpu(void);
struct lkl_tls_key *host_tls_alloc(void (*destructor)(void *));
void host_tls_free(struct lkl_tls_key *k);
int host_tls_set(struct lkl_tls_key *k, void *data);
void *host_tls_get(struct lkl_tls_key *k);

/* time.c */
unsigned long long host_time(void);
struct lkl_timer *host_timer_alloc(void (*fn)(void *), void *arg);
int host_timer_set_oneshot(struct lkl_timer *t, unsigned long delta);
void host_timer_cancel(struct lkl_timer *t);
void host_timer_free(struct lkl_timer *t);

/* mem.c */
void *host_mem_alloc(unsigned long size);
void host_mem_free(void *p);
void *host_ram_alloc(unsigned long size);
void host_ram_free(void *p, unsigned long size);

#endif
