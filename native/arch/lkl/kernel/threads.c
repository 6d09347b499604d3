// SPDX-License-Identifier: GPL-2.0
/*
 * Tasks are host threads.
 *
 * Every task created by the kernel gets its own host thread, which
 * waits on the task's semaphore until the scheduler switches to it.  A
 * context switch posts the next task's semaphore and blocks the
 * previous task's thread on its own: exactly one of them runs.
 */
#include <linux/sched.h>
#include <linux/sched/task.h>
#include <linux/sched/task_stack.h>
#include <linux/sched/debug.h>
#include <linux/kernel.h>
#include <asm/switch_to.h>
#include <asm/lkl.h>

struct thread_info *lkl_current_ti = &init_thread_info;

/* The task we switched away from, read by the task that resumes. */
static struct task_struct *switched_from;

/*
 * Every task that owns a host thread, so that halt can make each one
 * leave and join it.  Changed only under the CPU.
 */
static struct task_struct *live_tasks;

static void live_add(struct task_struct *p)
{
	p->thread.prev_live = NULL;
	p->thread.next_live = live_tasks;
	if (live_tasks)
		live_tasks->thread.prev_live = p;
	live_tasks = p;
}

static void live_del(struct task_struct *p)
{
	if (p->thread.prev_live)
		p->thread.prev_live->thread.next_live = p->thread.next_live;
	else if (live_tasks == p)
		live_tasks = p->thread.next_live;
	if (p->thread.next_live)
		p->thread.next_live->thread.prev_live = p->thread.prev_live;
	p->thread.next_live = p->thread.prev_live = NULL;
}

/*
 * The boot thread becomes the idle task.  It is joined by the host side
 * that created it, so it is not on the live list.
 */
int lkl_threads_init_boot(lkl_thread_t boot_thread)
{
	init_task.thread.sched_sem = lkl_ops->sem_alloc(0);
	if (!init_task.thread.sched_sem)
		return -ENOMEM;
	init_task.thread.exec_sem = init_task.thread.sched_sem;
	init_task.thread.host_thread = boot_thread;
	init_task.thread.dead = false;
	live_tasks = NULL;
	lkl_current_ti = &init_thread_info;
	return 0;
}

void lkl_threads_cleanup(void)
{
	lkl_ops->sem_free(init_task.thread.sched_sem);
	init_task.thread.sched_sem = NULL;
}

struct task_struct *lkl_switched_from(void)
{
	return switched_from;
}

/* First code of a new task's host thread. */
static void task_bootstrap(void *arg)
{
	struct task_struct *task = arg;

	lkl_ops->sem_down(task->thread.sched_sem);
	if (READ_ONCE(task->thread.dead))
		return;

	schedule_tail(switched_from);

	/*
	 * A kernel thread never returns from fn.  A user-mode thread (the
	 * init process) returns 0 when it would enter user space: for us
	 * that is where it starts serving the host.
	 */
	if (task->thread.fn(task->thread.fn_arg) == 0 &&
	    !(task->flags & PF_KTHREAD))
		lkl_init_server();
	do_exit(0);
}

int copy_thread(struct task_struct *p, const struct kernel_clone_args *args)
{
	struct thread_struct *t = &p->thread;

	/* fork()/clone() from a syscall would need a user context to copy. */
	if (!args->fn)
		return -EINVAL;

	memset(t, 0, sizeof(*t));
	t->fn = args->fn;
	t->fn_arg = args->fn_arg;
	t->sched_sem = lkl_ops->sem_alloc(0);
	if (!t->sched_sem)
		return -ENOMEM;
	t->exec_sem = t->sched_sem;
	t->host_thread = lkl_ops->thread_create(task_bootstrap, p);
	if (!t->host_thread) {
		lkl_ops->sem_free(t->sched_sem);
		t->sched_sem = NULL;
		return -EAGAIN;
	}
	live_add(p);
	return 0;
}

/* Make a task's host thread leave (if it has not) and reap it. */
static void reap_host_thread(struct task_struct *p)
{
	struct thread_struct *t = &p->thread;

	if (!t->host_thread)
		return;
	WRITE_ONCE(t->dead, true);
	lkl_ops->sem_up(t->sched_sem);
	/* An application thread executing the task leaves through exit_jb. */
	if (t->exec_sem != t->sched_sem)
		lkl_ops->sem_up(t->exec_sem);
	lkl_ops->thread_join(t->host_thread);
	t->host_thread = 0;
	lkl_ops->sem_free(t->sched_sem);
	t->sched_sem = NULL;
}

/* The task is freed: its host thread has left __switch_to for good. */
void arch_release_task_struct(struct task_struct *tsk)
{
	if (tsk == &init_task || !tsk->thread.host_thread)
		return;
	live_del(tsk);
	reap_host_thread(tsk);
}

struct task_struct *__switch_to(struct task_struct *prev,
				struct task_struct *next)
{
	struct thread_struct *prev_t = &prev->thread;
	struct lkl_sem *wait_sem = prev_t->exec_sem;
	bool prev_dying = READ_ONCE(prev->__state) == TASK_DEAD;
	void *leave_jb[5];
	bool leave = false;

	/*
	 * A host thread that is not prev's own leaves instead of waiting:
	 * one that scheduled in the idle task's place, or an application
	 * thread done with its task.  Decided, and the jump buffer copied,
	 * before the hand-off, after which others may switch again.
	 */
	if (prev == &init_task) {
		leave = lkl_idle_leaving(leave_jb);
		/* Only the idle thread itself may wait as the idle task. */
		if (!leave && init_task.thread.host_thread &&
		    lkl_ops->thread_self() != init_task.thread.host_thread)
			panic("lkl: a host thread switched away from idle in its place\n");
	}
	else if (prev_t->leave_jb) {
		memcpy(leave_jb, prev_t->leave_jb, sizeof(leave_jb));
		prev_t->leave_jb = NULL;
		leave = true;
	}

	switched_from = prev;
	lkl_current_ti = task_thread_info(next);
	if (next == &init_task && leave && prev != &init_task &&
	    lkl_idle_switch_in_place())
		__builtin_longjmp(leave_jb, 1);	/* keeps the CPU, as idle */
	if (next == &init_task)
		lkl_idle_switched_to();
	lkl_ops->sem_up(next->thread.exec_sem);
	if (leave)
		__builtin_longjmp(leave_jb, 1);

	/* The exit path switches away one last time; prev may be freed. */
	if (prev_dying)
		lkl_ops->thread_exit();

	lkl_ops->sem_down(wait_sem);
	if (READ_ONCE(prev_t->dead)) {
		if (prev_t->exit_jb)
			__builtin_longjmp(prev_t->exit_jb, 1);
		lkl_ops->thread_exit();
	}

	return switched_from;
}

/*
 * Halt: the CPU is held by a thread that will never give it back, so no
 * kernel code runs any more.  Release every task's host thread and join it.
 */
void lkl_threads_stop_all(void)
{
	struct task_struct *p = live_tasks;

	while (p) {
		struct task_struct *next = p->thread.next_live;

		reap_host_thread(p);
		p = next;
	}
	live_tasks = NULL;

	/* The idle task leaves from __switch_to or from arch_cpu_idle. */
	WRITE_ONCE(init_task.thread.dead, true);
	lkl_ops->sem_up(init_task.thread.sched_sem);
}

void flush_thread(void)
{
}

void show_regs(struct pt_regs *regs)
{
	show_regs_print_info(KERN_INFO);
}
