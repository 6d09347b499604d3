/*
 * lkl: the Linux kernel as a library.  The public C API.
 *
 * Boot the kernel with a host-operations table (lkl_host_ops is the
 * POSIX one), make syscalls from any thread, halt.  Syscalls return a
 * negative errno on failure.  Kernel constants and structures are in
 * <lkl/linux/...> and <lkl/asm/...> with an lkl_/LKL_ prefix, so they
 * can be included beside the C library's headers.
 */
#ifndef LKL_LKL_H
#define LKL_LKL_H

#ifdef __cplusplus
extern "C" {
#endif

#include <lkl/host_ops.h>
/* What the kernel gives: boot, syscalls, halt, IRQs, devices. */
#include <lkl/lkl_api.h>

/* The POSIX host operations (native/host). */
extern struct lkl_host_ops lkl_host_ops;

/* The text of an errno (positive or negative). */
const char *lkl_strerror(int err);

/*
 * Pin every host thread the kernel creates from now on (kernel threads,
 * shadow threads, timers, device pollers) to host CPU cpu; -1 unpins.
 * Application threads are left alone.  Returns 0 or -errno.
 */
int lkl_host_set_pin_cpu(int cpu);

#ifdef __cplusplus
}
#endif

#endif
