/*
 * The POSIX host operations table (lkl_host_ops, <lkl/lkl.h>): what the
 * kernel port needs from the host process, one mechanism a file (see
 * posix.h), plus the console and panic.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fault.h"
#include "iomem.h"
#include "posix.h"

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
