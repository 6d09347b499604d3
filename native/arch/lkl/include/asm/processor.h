/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _ASM_LKL_PROCESSOR_H
#define _ASM_LKL_PROCESSOR_H

#ifndef __ASSEMBLY__
#include <asm/ptrace.h>

struct task_struct;

struct thread_struct {
	struct pt_regs regs;
	/* What the task's host thread runs once first scheduled. */
	int (*fn)(void *);
	void *fn_arg;
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
