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
static struct thread_info *live_threads;

static void live_add(struct thread_info *ti)
{
	ti->prev_live = NULL;
	ti->next_live = live_threads;
	if (live_threads)
		live_threads->prev_live = ti;
	live_threads = ti;
}

static void live_del(struct thread_info *ti)
{
	if (ti->prev_live)
		ti->prev_live->next_live = ti->next_live;
	else if (live_threads == ti)
		live_threads = ti->next_live;
	if (ti->next_live)
		ti->next_live->prev_live = ti->prev_live;
	ti->next_live = ti->prev_live = NULL;
}

/*
 * The boot thread becomes the idle task.  It is joined by the host side
 * that created it, so it is not on the live list.
 */
int lkl_threads_init_boot(lkl_thread_t boot_thread)
{
	init_thread_info.sched_sem = lkl_ops->sem_alloc(0);
	if (!init_thread_info.sched_sem)
		return -ENOMEM;
	init_thread_info.host_thread = boot_thread;
	init_thread_info.dead = false;
	live_threads = NULL;
	lkl_current_ti = &init_thread_info;
	return 0;
}

/* First code of a new task's host thread. */
static void task_bootstrap(void *arg)
{
	struct thread_info *ti = arg;
	struct task_struct *task = ti->task;
	int (*fn)(void *);

	lkl_ops->sem_down(ti->sched_sem);
	if (ti->dead)
		return;

	schedule_tail(switched_from);

	fn = task->thread.fn;
	/*
	 * A kernel thread never returns from fn.  A user-mode thread (the
	 * init process) returns 0 when it would enter user space: for us
	 * that is where it starts serving the host.
	 */
	if (fn(task->thread.fn_arg) == 0 && !(task->flags & PF_KTHREAD))
		lkl_init_server();
	do_exit(0);
}

int copy_thread(struct task_struct *p, const struct kernel_clone_args *args)
{
	struct thread_info *ti = task_thread_info(p);

	/* fork()/clone() from a syscall would need a user context to copy. */
	if (!args->fn)
		return -EINVAL;

	p->thread.fn = args->fn;
	p->thread.fn_arg = args->fn_arg;

	ti->dead = false;
	ti->sched_sem = lkl_ops->sem_alloc(0);
	if (!ti->sched_sem)
		return -ENOMEM;
	ti->host_thread = lkl_ops->thread_create(task_bootstrap, ti);
	if (!ti->host_thread) {
		lkl_ops->sem_free(ti->sched_sem);
		ti->sched_sem = NULL;
		return -EAGAIN;
	}
	live_add(ti);
	return 0;
}

/* Make a task's host thread leave (if it has not) and reap it. */
static void reap_host_thread(struct thread_info *ti)
{
	if (!ti->host_thread)
		return;
	ti->dead = true;
	if (ti->sched_sem)
		lkl_ops->sem_up(ti->sched_sem);
	lkl_ops->thread_join(ti->host_thread);
	ti->host_thread = 0;
	if (ti->sched_sem)
		lkl_ops->sem_free(ti->sched_sem);
	ti->sched_sem = NULL;
}

/* The task is freed: its host thread has left __switch_to for good. */
void arch_release_task_struct(struct task_struct *tsk)
{
	struct thread_info *ti = task_thread_info(tsk);

	if (ti == &init_thread_info || !ti->host_thread)
		return;
	live_del(ti);
	reap_host_thread(ti);
}

struct task_struct *__switch_to(struct task_struct *prev,
				struct task_struct *next)
{
	struct thread_info *prev_ti = task_thread_info(prev);
	struct thread_info *next_ti = task_thread_info(next);
	bool prev_dying = READ_ONCE(prev->__state) == TASK_DEAD;

	switched_from = prev;
	lkl_current_ti = next_ti;
	lkl_ops->sem_up(next_ti->sched_sem);

	/* The exit path switches away one last time; prev_ti may be freed. */
	if (prev_dying)
		lkl_ops->thread_exit();

	lkl_ops->sem_down(prev_ti->sched_sem);
	if (READ_ONCE(prev_ti->dead))
		lkl_ops->thread_exit();

	return switched_from;
}

/*
 * Halt: the CPU is held by a thread that will never give it back, so no
 * kernel code runs any more.  Release every task's host thread and join it.
 */
void lkl_threads_stop_all(void)
{
	struct thread_info *ti = live_threads;

	while (ti) {
		struct thread_info *next = ti->next_live;

		reap_host_thread(ti);
		ti = next;
	}
	live_threads = NULL;

	/* The idle task leaves from __switch_to or from arch_cpu_idle. */
	WRITE_ONCE(init_thread_info.dead, true);
	lkl_ops->sem_up(init_thread_info.sched_sem);
}

void lkl_threads_cleanup(void)
{
	lkl_ops->sem_free(init_thread_info.sched_sem);
	init_thread_info.sched_sem = NULL;
}

void flush_thread(void)
{
}

void show_regs(struct pt_regs *regs)
{
	show_regs_print_info(KERN_INFO);
}
