/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _ASM_LKL_PROCESSOR_H
#define _ASM_LKL_PROCESSOR_H

#ifndef __ASSEMBLY__
#include <linux/types.h>
#include <asm/ptrace.h>
#include <asm/host_ops.h>

struct task_struct;

/*
 * The host side of a task.  It lives in task_struct rather than in
 * thread_info because the kernel frees thread_info before its last
 * hook on the task (arch_release_task_struct) runs.
 */
struct thread_struct {
	struct pt_regs regs;
	/* What the task's host thread runs once first scheduled. */
	int (*fn)(void *);
	void *fn_arg;
	/* The task's own host thread waits here while switched out. */
	struct lkl_sem *sched_sem;
	/*
	 * Where whoever executes the task waits while it is switched out:
	 * sched_sem, or an application thread's semaphore while that thread
	 * runs the task (direct syscalls).
	 */
	struct lkl_sem *exec_sem;
	/* Set by an application thread that leaves the task at the next switch. */
	void **leave_jb;
	/* The host thread created for this task (0: none or reaped). */
	lkl_thread_t host_thread;
	/* Set when the task is gone and its host thread must leave. */
	bool dead;
	/*
	 * Set while an application thread executes the task (direct
	 * syscalls): on halt it leaves the kernel by jumping here, since it
	 * is not ours to end.
	 */
	void **exit_jb;
	/* On the list of tasks that own a host thread (threads.c). */
	struct task_struct *next_live, *prev_live;
};

#define INIT_THREAD { }

/* No user address space of its own: every address belongs to the host. */
#define TASK_SIZE		(~0UL)
#define TASK_UNMAPPED_BASE	0UL
#define STACK_TOP		TASK_SIZE
#define STACK_TOP_MAX		TASK_SIZE

#define task_pt_regs(tsk)	(&(tsk)->thread.regs)
#define KSTK_EIP(tsk)		(0)
#define KSTK_ESP(tsk)		(0)

static inline void cpu_relax(void)
{
	__asm__ __volatile__("" : : : "memory");
}

static inline unsigned long __get_wchan(struct task_struct *p)
{
	return 0;
}

static inline void start_thread(struct pt_regs *regs, unsigned long pc,
				unsigned long sp)
{
}

#endif /* __ASSEMBLY__ */
#endif
