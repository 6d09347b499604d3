/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * The whole interface between the kernel and the host process.
 *
 * The kernel side (arch/lkl) sees the host only through this table; the
 * host side (native/host) implements it with libc.  Only plain C types
 * appear here so that the header compiles in both worlds.
 */
#ifndef _ASM_UAPI_LKL_HOST_OPS_H
#define _ASM_UAPI_LKL_HOST_OPS_H

struct lkl_sem;
struct lkl_tls_key;
struct lkl_timer;

/* An opaque host thread handle; 0 means "no thread". */
typedef unsigned long lkl_thread_t;

struct lkl_host_ops {
	/* Console text, not NUL terminated. */
	void (*print)(const char *str, int len);
	/* The kernel panicked; must not return. */
	void (*panic)(void);

	/* Counting semaphores: the kernel's only blocking primitive. */
	struct lkl_sem *(*sem_alloc)(int count);
	void (*sem_free)(struct lkl_sem *sem);
	void (*sem_up)(struct lkl_sem *sem);
	void (*sem_down)(struct lkl_sem *sem);
	/* Non-blocking down: 1 if taken, 0 if the count was zero. */
	int (*sem_trydown)(struct lkl_sem *sem);
	/*
	 * Optional: sem_down for a direct-mode syscall's thread whose task
	 * sleeps; meanwhile the host may do device work on this thread that
	 * would otherwise wake another one (receiving the frame that wakes
	 * the task).  NULL: sem_down.
	 */
	void (*sem_down_serving)(struct lkl_sem *sem);

	/*
	 * Threads.  thread_create starts fn(arg) on a new host thread and
	 * returns its handle (0 on failure).  thread_exit ends the calling
	 * thread from any depth of kernel code.  thread_join waits for a
	 * thread made by thread_create and releases it.
	 */
	lkl_thread_t (*thread_create)(void (*fn)(void *), void *arg);
	void (*thread_exit)(void);
	int (*thread_join)(lkl_thread_t thread);
	lkl_thread_t (*thread_self)(void);

	/* Thread-local storage for host threads that call into the kernel. */
	struct lkl_tls_key *(*tls_alloc)(void (*destructor)(void *));
	void (*tls_free)(struct lkl_tls_key *key);
	int (*tls_set)(struct lkl_tls_key *key, void *data);
	void *(*tls_get)(struct lkl_tls_key *key);

	/* General allocations, and the kernel's RAM (page aligned). */
	void *(*mem_alloc)(unsigned long size);
	void (*mem_free)(void *addr);
	void *(*ram_alloc)(unsigned long size);
	void (*ram_free)(void *addr, unsigned long size);

	/* Monotonic time in nanoseconds. */
	unsigned long long (*time)(void);

	/*
	 * One-shot timers: fn(arg) runs on a host thread owned by the timer
	 * (one per timer, reused for every expiry) delta_ns after
	 * timer_set_oneshot.  Re-arming replaces the pending expiry.
	 */
	struct lkl_timer *(*timer_alloc)(void (*fn)(void *), void *arg);
	int (*timer_set_oneshot)(struct lkl_timer *timer, unsigned long delta_ns);
	void (*timer_cancel)(struct lkl_timer *timer);
	void (*timer_free)(struct lkl_timer *timer);

	/*
	 * Memory-mapped I/O regions of host devices.  ioremap returns a
	 * cookie address (or 0) for a region registered by the host;
	 * iomem_access reads or writes size bytes at addr.
	 */
	void *(*ioremap)(long addr, int size);
	int (*iomem_access)(const volatile void *addr, void *val, int size,
			    int write);

	/*
	 * Optional: the host's tuned memory routines.  The kernel's generic
	 * ones copy a byte at a time, and every socket read and write goes
	 * through them.
	 */
	void *(*memcpy)(void *dst, const void *src, unsigned long len);
	void *(*memset)(void *s, int c, unsigned long len);
	void *(*memmove)(void *dst, const void *src, unsigned long len);

	/*
	 * Optional: copy or zero memory the kernel got from a syscall's
	 * caller, which may be a bad pointer.  They return the number of
	 * bytes not done: a fault stops them (and is not the process's
	 * end).  NULL: memcpy and memset, and a bad pointer faults.
	 */
	unsigned long (*user_copy)(void *dst, const void *src,
				   unsigned long len);
	unsigned long (*user_clear)(void *dst, unsigned long len);
};

#endif
