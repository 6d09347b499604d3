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

/* The POSIX host operations (native/host). */
extern struct lkl_host_ops lkl_host_ops;

/*
 * Boot.  cmdline is a kernel command line ("mem=64M" sets the RAM).
 * Returns 0 once the kernel serves syscalls, -EBUSY if one already
 * runs, -EALREADY if one ran and halted in this process (a kernel
 * cannot boot twice in one process).
 */
int lkl_start_kernel(struct lkl_host_ops *ops, const char *cmdline);

/* 1 while the kernel runs (between a successful start and halt). */
int lkl_is_running(void);

/*
 * Run syscall nr with params[0..5] (params may be NULL for none) on the
 * calling thread's shadow kernel thread.  Returns the kernel's result:
 * negative errno on failure, -ENOSYS for an unknown number or one that
 * would end the kernel's init process (exit, execve, clone, reboot), and
 * -ENODEV when no kernel runs.
 */
long lkl_syscall(long nr, long *params);

/*
 * Power the kernel off and join every host thread it created.  Threads
 * blocked in syscalls return -ENODEV.  Returns 0, or -ENODEV if no
 * kernel runs.
 */
long lkl_sys_halt(void);

/*
 * How syscalls enter the kernel, chosen at boot with the command line
 * "lkl.syscall_mode=shadow|direct": 0 for shadow (a kernel thread per host
 * thread runs the calls), 1 for direct (the calling thread runs them under
 * the CPU lock).
 */
int lkl_syscall_mode(void);

/* Interrupts for host devices. */
int lkl_get_free_irq(const char *user);
void lkl_put_irq(int irq, const char *user);
int lkl_trigger_irq(int irq);

/*
 * Attach a virtio-mmio device after boot: its registers are the host
 * iomem region at base (a cookie from the host's iomem registry), its
 * interrupt irq (from lkl_get_free_irq).  The kernel's virtio driver
 * probes it before this returns; 0 or -errno.
 */
long lkl_virtio_mmio_add(unsigned long base, long size, long irq);

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
