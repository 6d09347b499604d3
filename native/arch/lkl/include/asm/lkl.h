/* SPDX-License-Identifier: GPL-2.0 */
/* Declarations shared by the files of arch/lkl/kernel. */
#ifndef _ASM_LKL_LKL_H
#define _ASM_LKL_LKL_H

#include <linux/types.h>
#include <asm/host_ops.h>
#include <asm/lkl_api.h>	/* the public entry points */

extern struct lkl_host_ops *lkl_ops;

/* cpu.c: the lock that makes one host thread at a time the CPU. */
bool lkl_cpu_take(void);
void lkl_cpu_release_waiters(void);
bool lkl_cpu_try_take(void);
void lkl_cpu_release(bool ran_work);
bool lkl_cpu_is_shutdown(void);
void lkl_cpu_shutdown(void);
int lkl_cpu_init(void);
/* Called by __switch_to() around the idle task. */
void lkl_idle_switched_to(void);
bool lkl_idle_switch_in_place(void);
void lkl_idle_finish_in_place(void);
bool lkl_idle_leaving(void **jb);

/* irq.c */
bool lkl_irqs_pending(void);
void lkl_run_pending_irqs(void);
int lkl_irq_init(void);

/* threads.c */
void lkl_threads_stop_all(void);
int lkl_threads_init_boot(lkl_thread_t boot_thread);
struct task_struct *lkl_switched_from(void);
void lkl_threads_cleanup(void);

/* syscalls.c */
int lkl_syscalls_init(void);
void lkl_syscalls_cancel_all(void);
void lkl_init_server(void);
void lkl_syscalls_cleanup(void);
long lkl_syscalls_power_off(struct lkl_sem *halt_sem);
/* Run fn(args) in process context on the calling thread's shadow. */
long lkl_shadow_call(long (*fn)(long *args), long *args);

/* virtio.c: a virtio-mmio platform device (in process context). */
long lkl_virtio_mmio_register(long *args);

/* time.c */
void lkl_time_stop(void);

/* setup.c */
void lkl_machine_stop(void);
void lkl_boot_complete(void);

/* syscalls.c, called by schedule() (kernel-config/patches/0001). */
bool arch_schedule_borrowed(void);
void lkl_direct_irqs_done(void);

#endif
