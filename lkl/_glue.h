/*
 * The C side of the lkl Python extension: what must not run under the
 * GIL or cannot be written in Cython.
 *
 *   - the console: the kernel's print hook appends to a buffer under a
 *     mutex (it runs on kernel threads holding the kernel CPU lock, so it
 *     never touches Python); Python reads or waits on it;
 *   - the readiness poller: one host thread blocked in the kernel's
 *     epoll_pwait, which mirrors kernel socket readiness on host
 *     endpoints ("watches"), so select/selectors/asyncio can wait on an
 *     lkl socket;
 *   - the constant tables (names and the kernel's values, from the
 *     exported lkl headers).
 *
 * Every function returns 0 or a negative errno unless said otherwise.
 */
#ifndef LKL_PY_GLUE_H
#define LKL_PY_GLUE_H

#include <stdint.h>

/* Boot with the console hooked; start the poller.  cpu < -1: no pinning. */
int glue_boot(const char *cmdline, int pin_cpu);
/* Halt the kernel, join the poller, wake console waiters.  0 or -ENODEV. */
long glue_halt(void);
/* Marks the state of a forked child: nothing may touch the kernel. */
void glue_mark_forked(void);
int glue_forked(void);

/* *deadline = now on clock + timeout seconds (for pthread timed waits). */
struct timespec;
void glue_deadline(struct timespec *deadline, int clock, double timeout);

/* A syscall, refused with -ENODEV in a forked child. */
long glue_syscall(long nr, long *params);

/*
 * Console.  Offsets count every byte the kernel ever printed; the buffer
 * keeps the most recent GLUE_CONSOLE_KEEP bytes.  glue_console_copy
 * copies the text from offset start (or the oldest kept byte) into a
 * malloc'd buffer the caller frees, and returns the offset after it.
 */
uint64_t glue_console_copy(uint64_t start, char **text, uint64_t *len);
/* Wait (without the GIL) until the console passes offset, halt, or timeout. */
uint64_t glue_console_wait(uint64_t offset, double timeout);
int glue_console_closed(void);

/*
 * Watches: a host endpoint (one end of an AF_UNIX stream socketpair,
 * the fd returned in *hostfd) that is readable exactly while the kernel
 * socket kfd is readable, and writable exactly while it is writable
 * (an error or hang-up shows both, as select() reports them).  The
 * poller updates it on every kernel event; a caller that consumed data
 * or buffer space on kfd calls glue_watch_refresh.  The watch owns the
 * endpoint: glue_watch_del closes it.  A watch is named by (slot, gen);
 * a stale name is ignored.
 */
int glue_watch_add(int kfd, int *slot, unsigned *gen, int *hostfd);
/* Check kfd now (one zero-timeout ppoll) and update the endpoint. */
void glue_watch_refresh(int slot, unsigned gen);
/*
 * After a read-type call: seq is glue_watch_seq() from before the call,
 * drained says the call left nothing to read (EAGAIN, or a short stream
 * read).  Then, unless a check was shown meanwhile, the endpoint stops
 * showing readable without a kernel call; otherwise as refresh.
 */
unsigned glue_watch_seq(int slot, unsigned gen);
void glue_watch_settle(int slot, unsigned gen, unsigned seq, int drained);
/* What the endpoint shows: GLUE_READ | GLUE_WRITE bits; -1 if stale. */
int glue_watch_shown(int slot, unsigned gen);
void glue_watch_del(int slot, unsigned gen);
#define GLUE_READ 1
#define GLUE_WRITE 2

/*
 * The poller's health: 0, or the errno it stopped with (then
 * glue_watch_add fails with -EIO, and a line is in the console);
 * glue_poller_failures counts such stops.  glue_poller_break closes the
 * poller's epoll fd, for tests of that path.
 */
int glue_poller_error(void);
unsigned long glue_poller_failures(void);
int glue_poller_break(void);

/* Constants: NULL-terminated tables of name and kernel value. */
struct glue_const {
	const char *name;
	long value;
};
extern const struct glue_const glue_constants[];
extern const struct glue_const glue_internal_constants[];
extern const struct glue_const glue_syscall_numbers[];
/* 1 if the library has lkl_syscall_mode() (the direct mode). */
int glue_have_syscall_mode(void);
/* The running kernel's mode: 0 shadow, 1 direct; -1 unknown or not running. */
int glue_syscall_mode(void);

#endif
