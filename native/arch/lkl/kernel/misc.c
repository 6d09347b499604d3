// SPDX-License-Identifier: GPL-2.0
/* Arch hooks the generic kernel needs that have nothing to do here. */
#include <linux/kernel.h>
#include <linux/sched.h>
#include <linux/sched/debug.h>
#include <linux/syscalls.h>
#include <linux/ptrace.h>
#include <linux/seq_file.h>

void show_stack(struct task_struct *task, unsigned long *sp,
		const char *loglvl)
{
	printk("%sCall trace unavailable: kernel frames are host frames\n",
	       loglvl);
}

SYSCALL_DEFINE0(rt_sigreturn)
{
	return -ENOSYS;
}

/* Nothing runs in user mode, so there is nothing to trace. */
long arch_ptrace(struct task_struct *child, long request, unsigned long addr,
		 unsigned long data)
{
	return -EIO;
}

void ptrace_disable(struct task_struct *child)
{
}

static int cpuinfo_show(struct seq_file *m, void *v)
{
	seq_printf(m, "processor\t: 0\nvendor_id\t: lkl\nmodel name\t: host thread\n\n");
	return 0;
}

static void *cpuinfo_start(struct seq_file *m, loff_t *pos)
{
	return *pos == 0 ? (void *)1 : NULL;
}

static void *cpuinfo_next(struct seq_file *m, void *v, loff_t *pos)
{
	++*pos;
	return NULL;
}

static void cpuinfo_stop(struct seq_file *m, void *v)
{
}

const struct seq_operations cpuinfo_op = {
	.start	= cpuinfo_start,
	.next	= cpuinfo_next,
	.stop	= cpuinfo_stop,
	.show	= cpuinfo_show,
};
