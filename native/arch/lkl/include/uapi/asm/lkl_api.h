/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * The entry points the kernel side (arch/lkl) gives the host process:
 * the one home of their declarations.  The host sees them as
 * <lkl/lkl_api.h> through <lkl/lkl.h>; arch/lkl includes this as
 * <asm/lkl_api.h>.  Only plain C types, like host_ops.h.
 */
#ifndef _ASM_UAPI_LKL_API_H
#define _ASM_UAPI_LKL_API_H

struct lkl_host_ops;

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
 * would end the kernel's init process (exit, execve, clone, reboot),
 * -ENOMEM if the thread's first call cannot get its shadow, and -ENODEV
 * when no kernel runs.
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

/*
 * Memory the kernel has pages for (arch/lkl/kernel/zerocopy.c): a send
 * from it with MSG_ZEROCOPY (SO_ZEROCOPY set) references its pages
 * instead of copying them (completions without ZEROCOPY_COPIED where
 * the path allows it).  lkl_zerocopy_alloc maps len bytes and stores the
 * address in *buf (0 or -errno); lkl_zerocopy_free unmaps them (pages
 * the kernel still sends from stay until their completion).  Other host
 * memory works with MSG_ZEROCOPY too, copied (ZEROCOPY_COPIED).
 */
long lkl_zerocopy_alloc(unsigned long len, void **buf);
long lkl_zerocopy_free(void *buf, unsigned long len);

/*
 * Zero-copy TCP receive (arch/lkl/kernel/zerocopy_rx.c).  Kernel memory
 * is host memory, so the received skbs' data can be read in place.
 *
 * lkl_recv_zerocopy takes up to len bytes off TCP socket fd's receive
 * queue, as recv would, and fills segs[0..] with where they are: each
 * segment has len > 0 and their lengths add up to the result.  At most
 * nsegs (1..LKL_ZC_MAX_SEGS) segments; fewer bytes than len when they
 * run out.  flags: 0 or MSG_DONTWAIT (0x40); an O_NONBLOCK socket never
 * waits, a blocking one waits up to SO_RCVTIMEO.  Returns the bytes, 0
 * at end of stream (no token), or -errno: -EAGAIN, -ENOTCONN, -EINVAL
 * (not a TCP socket, bad flags or sizes), -ENOBUFS (too many tokens
 * held), the socket's error.  Urgent data is skipped as by recv (read it
 * with recv(MSG_OOB)).
 *
 * The bytes stay valid, and charged to the socket's receive buffer (so
 * held data shrinks the window the peer sees), until
 * lkl_zerocopy_release(*token); releasing after the socket is closed is
 * fine.  An unknown or already released token is -EINVAL.  The memory is
 * the kernel's: it must not be written, and is gone after a halt.
 */
#define LKL_ZC_MAX_SEGS 1024

struct lkl_zc_seg {
	unsigned long addr;
	unsigned long len;
};

long lkl_recv_zerocopy(int fd, struct lkl_zc_seg *segs, int nsegs,
		       unsigned long len, int flags, unsigned long *token);
long lkl_zerocopy_release(unsigned long token);

#endif
