// SPDX-License-Identifier: GPL-2.0
/*
 * Syscall entry.
 *
 * A host thread's first syscall asks the init process to create its
 * shadow: a thread of the init process, so every host thread sees the
 * same pid, fd table and cwd.  Then, by the mode chosen at boot
 * ("lkl.syscall_mode="):
 *
 * shadow (the paper's baseline): the host thread queues a request,
 *   raises the syscall IRQ and waits on the record's semaphore; the IRQ
 *   wakes the shadow, which runs the call and posts the result.
 *
 * direct (the paper's fast path): the host thread takes the CPU, borrows
 *   its shadow's task_struct ("current" becomes the shadow; the scheduler
 *   is not told) and runs the call itself.  If the call sleeps,
 *   schedule() lands in arch_schedule_borrowed(): the host thread gives
 *   the CPU back and becomes the task's executor (its semaphore is the
 *   one a switch to the task posts), so when the scheduler runs the task
 *   again it is this thread that wakes, as the task.  At the end of the
 *   call it parks the task and leaves; the shadow's own thread stays
 *   parked through all of this.
 */
#include <linux/syscalls.h>
#include <linux/interrupt.h>
#include <linux/sched/task.h>
#include <linux/sched/signal.h>
#include <linux/task_work.h>
#include <linux/reboot.h>
#include <linux/resume_user_mode.h>
#include <asm/unistd.h>
#include <asm/lkl.h>

typedef long (*syscall_fn_t)(long, long, long, long, long, long);

asmlinkage long sys_rt_sigreturn(void);
asmlinkage long sys_mmap(unsigned long addr, unsigned long len,
			 unsigned long prot, unsigned long flags,
			 unsigned long fd, unsigned long off);
asmlinkage long sys_lkl_recv_zerocopy(int fd, void __user *segs, size_t len,
				      unsigned int flags, unsigned int nsegs,
				      unsigned long __user *token);
asmlinkage long sys_lkl_zerocopy_release(unsigned long token);

#undef __SYSCALL
#define __SYSCALL(nr, call)	[nr] = (syscall_fn_t)(void *)(call),
#define __SYSCALL_WITH_COMPAT(nr, native, compat)	__SYSCALL(nr, native)

static const syscall_fn_t syscall_table[__NR_syscalls] = {
	[0 ... __NR_syscalls - 1] = (syscall_fn_t)(void *)sys_ni_syscall,
#include <asm/syscall_table.h>
	/* lkl's own (uapi/asm/unistd.h) */
	[__NR_lkl_recv_zerocopy] = (syscall_fn_t)(void *)sys_lkl_recv_zerocopy,
	[__NR_lkl_zerocopy_release] = (syscall_fn_t)(void *)sys_lkl_zerocopy_release,
};

SYSCALL_DEFINE6(mmap, unsigned long, addr, unsigned long, len,
		unsigned long, prot, unsigned long, flags,
		unsigned long, fd, unsigned long, off)
{
	if (off & ~PAGE_MASK)
		return -EINVAL;
	return ksys_mmap_pgoff(addr, len, prot, flags, fd, off >> PAGE_SHIFT);
}

/* One per host thread that makes syscalls; lives in host memory. */
struct shadow {
	struct shadow *next_queued;	/* on ready_list or create_list */
	struct shadow *next_all, *prev_all;	/* on all_shadows */
	struct lkl_sem *done;		/* the host thread waits here */
	struct task_struct *task;	/* the shadow kernel thread */
	long nr;			/* a syscall, or LKL_REQ_CALL */
	long (*call)(long *args);	/* LKL_REQ_CALL: what to run */
	long args[6];
	long ret;
	int pending;			/* a request waits for the shadow */
	int flags;			/* SHADOW_QUEUED | SHADOW_ORPHAN */
	int in_call;			/* the host thread waits for ret */
	int exiting;

	/* Direct mode. */
	struct lkl_sem *direct_sem;	/* the host thread executes the task */
	int direct_waiting;		/* it sleeps in arch_schedule_borrowed */
	struct thread_info *lent_ti;	/* the task whose place it took */
	unsigned long lent_flags;
	void *halt_jb[5];		/* where a halt sends the host thread */
	void *leave_jb[5];		/* where it leaves the parked task */
};

/*
 * A record is on ready_list at most once (QUEUED).  Its host thread may
 * exit while it is still queued: then it is left to the IRQ to free
 * (ORPHAN).  One atomic word, so exactly one side frees it.
 */
#define SHADOW_QUEUED	1
#define SHADOW_ORPHAN	2

static struct lkl_tls_key *shadow_key;
static int syscall_irq;
static bool direct_mode;

/* The record whose task a host thread is borrowing (under the CPU). */
static struct shadow *borrowed;

static int __init parse_syscall_mode(char *arg)
{
	if (!strcmp(arg, "direct"))
		direct_mode = true;
	else if (strcmp(arg, "shadow"))
		pr_warn("lkl: unknown syscall mode '%s', using shadow\n", arg);
	return 0;
}
early_param("lkl.syscall_mode", parse_syscall_mode);

/* 0: shadow, 1: direct. */
int lkl_syscall_mode(void)
{
	return direct_mode;
}
static struct task_struct *init_server_task;

/* Lock-free stacks filled by host threads, emptied by the IRQ. */
static struct shadow *ready_list;
static struct shadow *create_list;

/* Every live record, for halt; a host-side spin lock guards it. */
static struct shadow *all_shadows;
static int all_lock;

static void all_lock_take(void)
{
	while (__atomic_test_and_set(&all_lock, __ATOMIC_ACQUIRE))
		cpu_relax();
}

static void all_lock_release(void)
{
	__atomic_clear(&all_lock, __ATOMIC_RELEASE);
}

static void push(struct shadow **list, struct shadow *s)
{
	struct shadow *head = __atomic_load_n(list, __ATOMIC_RELAXED);

	do {
		s->next_queued = head;
	} while (!__atomic_compare_exchange_n(list, &head, s, true,
					      __ATOMIC_RELEASE,
					      __ATOMIC_RELAXED));
}

static struct shadow *take_all(struct shadow **list)
{
	return __atomic_exchange_n(list, NULL, __ATOMIC_ACQUIRE);
}

static bool restricted(long nr)
{
	switch (nr) {
	/* Would end or replace the init process that hosts every shadow. */
	case __NR_exit:
	case __NR_exit_group:
	case __NR_execve:
	case __NR_execveat:
	/* Need a user context to copy or return to. */
	case __NR_clone:
	case __NR_clone3:
	case __NR_rt_sigreturn:
	/* Power off only through lkl_sys_halt(), which reaps the threads. */
	case __NR_reboot:
		return true;
	}
	return false;
}

/*
 * A request that is not a syscall but must run in process context on
 * the caller's shadow (lkl_shadow_call): numbered after the last syscall.
 */
#define LKL_REQ_CALL	(__NR_syscalls + 0)

static long run_syscall(struct shadow *s)
{
	long nr = s->nr, *args = s->args;
	long ret;

	current->thread.regs.syscallno = nr;
	if (nr == LKL_REQ_CALL)
		ret = s->call(args);
	else
		ret = syscall_table[nr](args[0], args[1], args[2], args[3],
					args[4], args[5]);
	/* No signal handler will restart the call: report the interruption. */
	if (ret == -ERESTARTSYS || ret == -ERESTARTNOINTR ||
	    ret == -ERESTARTNOHAND || ret == -ERESTART_RESTARTBLOCK)
		ret = -EINTR;

	/* What the kernel leaves for the return to user space (fput!). */
	clear_thread_flag(TIF_NOTIFY_RESUME);
	clear_notify_signal();
	task_work_run();
	return ret;
}

static int shadow_main(void *arg)
{
	struct shadow *s = arg;

	s->task = current;
	set_task_comm(current, "lkl-shadow");
	__atomic_store_n(&s->in_call, 0, __ATOMIC_SEQ_CST);
	lkl_ops->sem_up(s->done);

	for (;;) {
		set_current_state(TASK_IDLE);
		if (!__atomic_load_n(&s->pending, __ATOMIC_ACQUIRE)) {
			schedule();
			continue;
		}
		__set_current_state(TASK_RUNNING);
		s->pending = 0;
		if (s->exiting)
			break;
		s->ret = run_syscall(s);
		__atomic_store_n(&s->in_call, 0, __ATOMIC_SEQ_CST);
		lkl_ops->sem_up(s->done);
	}

	s->task = NULL;
	__atomic_store_n(&s->in_call, 0, __ATOMIC_SEQ_CST);
	lkl_ops->sem_up(s->done);
	do_exit(0);
}

static void shadow_free(struct shadow *s);

static irqreturn_t syscall_interrupt(int irq, void *dev_id)
{
	struct shadow *s = take_all(&ready_list);

	while (s) {
		struct shadow *next = s->next_queued;
		int old = __atomic_fetch_and(&s->flags, ~SHADOW_QUEUED,
					     __ATOMIC_SEQ_CST);

		if (old & SHADOW_ORPHAN)
			shadow_free(s);
		else if (s->task)	/* NULL once the shadow has exited */
			wake_up_process(s->task);
		s = next;
	}
	if (__atomic_load_n(&create_list, __ATOMIC_ACQUIRE))
		wake_up_process(init_server_task);
	return IRQ_HANDLED;
}

/*
 * Hand a request to the kernel and wait on sem.  The in_call flag and
 * the running check pair with halt's state change and cancel sweep:
 * either halt sees in_call and posts us, or we see it halting.
 */
static long submit_and_wait(struct shadow *s, struct shadow **list,
			    struct lkl_sem *sem, bool halting)
{
	__atomic_store_n(&s->in_call, 1, __ATOMIC_SEQ_CST);
	if (!halting && !lkl_is_running()) {
		s->in_call = 0;
		return -ENODEV;
	}
	s->ret = -ENODEV;
	__atomic_store_n(&s->pending, 1, __ATOMIC_SEQ_CST);
	/*
	 * A shadow that is awake takes the next request without waiting
	 * for its wakeup, so its record may still be queued from the last
	 * one: queue it once, the pending wakeup covers both.
	 */
	if (list == &create_list ||
	    !(__atomic_fetch_or(&s->flags, SHADOW_QUEUED, __ATOMIC_SEQ_CST) &
	      SHADOW_QUEUED))
		push(list, s);
	lkl_trigger_irq(syscall_irq);
	lkl_ops->sem_down(sem);
	return s->ret;
}

static void all_add(struct shadow *s)
{
	all_lock_take();
	s->prev_all = NULL;
	s->next_all = all_shadows;
	if (all_shadows)
		all_shadows->prev_all = s;
	all_shadows = s;
	all_lock_release();
}

static void all_del(struct shadow *s)
{
	all_lock_take();
	if (s->prev_all)
		s->prev_all->next_all = s->next_all;
	else
		all_shadows = s->next_all;
	if (s->next_all)
		s->next_all->prev_all = s->prev_all;
	all_lock_release();
}

static void shadow_free(struct shadow *s)
{
	all_del(s);
	/* Either may be missing: its allocation failed. */
	if (s->done)
		lkl_ops->sem_free(s->done);
	if (s->direct_sem)
		lkl_ops->sem_free(s->direct_sem);
	lkl_ops->mem_free(s);
}

/* A host thread that made syscalls exits: so does its shadow. */
static void shadow_destructor(void *data)
{
	struct shadow *s = data;

	if (s->task && lkl_is_running()) {
		s->exiting = 1;
		submit_and_wait(s, &ready_list, s->done, false);
	}
	/* Still queued for the syscall IRQ?  Then the IRQ frees it. */
	if (!(__atomic_fetch_or(&s->flags, SHADOW_ORPHAN, __ATOMIC_SEQ_CST) &
	      SHADOW_QUEUED) || !lkl_is_running())
		shadow_free(s);
}

static struct shadow *current_shadow(bool halting)
{
	struct shadow *s = lkl_ops->tls_get(shadow_key);
	long ret;

	if (s)
		return s;

	s = lkl_ops->mem_alloc(sizeof(*s));
	if (!s)
		return ERR_PTR(-ENOMEM);
	memset(s, 0, sizeof(*s));
	s->done = lkl_ops->sem_alloc(0);
	s->direct_sem = lkl_ops->sem_alloc(0);
	all_add(s);
	if (!s->done || !s->direct_sem) {
		shadow_free(s);
		return ERR_PTR(-ENOMEM);
	}

	ret = submit_and_wait(s, &create_list, s->done, halting);
	if (!s->task) {
		shadow_free(s);
		return ERR_PTR(ret < 0 ? ret : -ENODEV);
	}
	lkl_ops->tls_set(shadow_key, s);
	return s;
}

/*
 * Interrupts just ran.  If a task is borrowed, anything that asked the
 * "current" task to reschedule (tiny RCU's tick does) asked the borrowed
 * one, which the scheduler does not know is running: a cond_resched()
 * would then enter __schedule() on the idle task's behalf.  The request
 * belongs to the task whose place was taken; the release runs it.
 */
void lkl_direct_irqs_done(void)
{
	struct shadow *s = borrowed;

	if (s && current == s->task && test_thread_flag(TIF_NEED_RESCHED)) {
		clear_thread_flag(TIF_NEED_RESCHED);
		set_ti_thread_flag(s->lent_ti, TIF_NEED_RESCHED);
	}
}

/*
 * schedule() on a borrowed task (see the patch in kernel-config/patches):
 * park this host thread until the scheduler has run the task for real
 * and its own thread has handed it over (shadow_main).
 */
bool arch_schedule_borrowed(void)
{
	struct shadow *s = borrowed;
	struct task_struct *task;

	if (!s || current != s->task)
		return false;
	if (task_is_running(current))
		return true;		/* nothing to sleep for */

	task = s->task;
	borrowed = NULL;
	/* From now on a switch to the task wakes this thread. */
	task->thread.exec_sem = s->direct_sem;
	s->direct_waiting = 1;
	lkl_current_ti = s->lent_ti;
	arch_local_irq_restore(s->lent_flags);
	lkl_cpu_release(true);

	if (lkl_ops->sem_down_serving)
		lkl_ops->sem_down_serving(s->direct_sem);
	else
		lkl_ops->sem_down(s->direct_sem);
	s->direct_waiting = 0;
	if (lkl_cpu_is_shutdown())
		__builtin_longjmp(s->halt_jb, 1);
	if (lkl_current_ti != task_thread_info(task))
		panic("lkl: direct waiter woken but its task is not current\n");
	/* Switched to, as the task: finish the switch, then the syscall. */
	schedule_tail(lkl_switched_from());
	/* A halt while it sleeps in __switch_to sends it to halt_jb. */
	task->thread.exit_jb = s->halt_jb;
	return true;
}

/*
 * The syscall slept, so this thread executes the task for real: put the
 * task back to sleep for its own thread and leave at the switch.
 */
static noinline void park_and_leave(struct shadow *s)
{
	struct task_struct *task = s->task;

	if (__builtin_setjmp(s->leave_jb)) {
		/* Switched to idle in its place: finish and free the CPU. */
		lkl_idle_finish_in_place();
		return;
	}
	task->thread.exit_jb = NULL;
	task->thread.exec_sem = task->thread.sched_sem;
	task->thread.leave_jb = s->leave_jb;
	for (;;) {
		set_current_state(TASK_IDLE);
		schedule();
		/* Woken before it could sleep: try again. */
	}
}

static long direct_syscall(struct shadow *s)
{
	struct task_struct *task = s->task;
	long ret;

	/* A halt reaches a host thread deep in the kernel through here. */
	if (__builtin_setjmp(s->halt_jb))
		return -ENODEV;
	if (!lkl_cpu_take())
		return -ENODEV;

	/* The CPU was free, so the idle task is current: take its place. */
	s->lent_ti = lkl_current_ti;
	s->lent_flags = arch_local_save_flags();
	borrowed = s;
	lkl_current_ti = task_thread_info(task);
	/* Running now: wakeups meant for the parked shadow are moot. */
	WRITE_ONCE(task->__state, TASK_RUNNING);
	arch_local_irq_enable();

	ret = run_syscall(s);

	if (borrowed == s) {
		/* It never slept: give the place back to the idle task. */
		arch_local_irq_disable();
		borrowed = NULL;
		if (!READ_ONCE(task->on_rq))
			WRITE_ONCE(task->__state, TASK_IDLE);
		lkl_current_ti = s->lent_ti;
		arch_local_irq_restore(s->lent_flags);
		lkl_cpu_release(true);
	} else {
		park_and_leave(s);
	}
	return ret;
}

long lkl_syscall(long nr, long *params)
{
	struct shadow *s;
	int i;

	if (!lkl_is_running())
		return -ENODEV;
	if (nr < 0 || nr >= __NR_syscalls || restricted(nr))
		return -ENOSYS;

	s = current_shadow(false);
	if (IS_ERR(s))
		return PTR_ERR(s);

	s->nr = nr;
	for (i = 0; i < 6; i++)
		s->args[i] = params ? params[i] : 0;
	if (direct_mode)
		return direct_syscall(s);
	return submit_and_wait(s, &ready_list, s->done, false);
}

/*
 * Run fn(args) (args[0..5]) on the calling thread's shadow, in process
 * context, whatever the syscall mode: for work that is not a syscall but
 * needs a task of the init process (registering devices, virtio.c).
 */
long lkl_shadow_call(long (*fn)(long *args), long *args)
{
	struct shadow *s;
	int i;

	if (!lkl_is_running())
		return -ENODEV;
	s = current_shadow(false);
	if (IS_ERR(s))
		return PTR_ERR(s);
	s->nr = LKL_REQ_CALL;
	s->call = fn;
	for (i = 0; i < 6; i++)
		s->args[i] = args[i];
	return submit_and_wait(s, &ready_list, s->done, false);
}

/* The reboot syscall, whose caller is woken by the halt, not the shadow. */
long lkl_syscalls_power_off(struct lkl_sem *halt_sem)
{
	struct shadow *s = current_shadow(true);

	if (IS_ERR(s))
		return PTR_ERR(s);
	s->nr = __NR_reboot;
	s->args[0] = LINUX_REBOOT_MAGIC1;
	s->args[1] = LINUX_REBOOT_MAGIC2;
	s->args[2] = LINUX_REBOOT_CMD_POWER_OFF;
	s->args[3] = 0;
	submit_and_wait(s, &ready_list, halt_sem, true);
	s->in_call = 0;
	return 0;
}

/* After halt: wake every host thread still waiting for a result. */
void lkl_syscalls_cancel_all(void)
{
	struct shadow *s;

	all_lock_take();
	for (s = all_shadows; s; s = s->next_all) {
		struct task_struct *task = s->task;

		s->task = NULL;
		if (__atomic_exchange_n(&s->in_call, 0, __ATOMIC_SEQ_CST)) {
			s->ret = -ENODEV;
			lkl_ops->sem_up(s->done);
		}
		/*
		 * Direct mode: an application thread executes the task and
		 * sleeps in it.  It leaves for direct_syscall() once woken
		 * (dead, or the CPU shut down); the task forgets its semaphore
		 * first, since the thread frees it on its way out.
		 */
		if (task && task->thread.exec_sem == s->direct_sem) {
			task->thread.exec_sem = task->thread.sched_sem;
			WRITE_ONCE(task->thread.dead, true);
			lkl_ops->sem_up(s->direct_sem);
		}
	}
	all_lock_release();
	ready_list = create_list = NULL;
}

/*
 * The init process, after "exec": ignore every signal (nothing would
 * deliver them, and a pending one would break every later sleep), tell
 * the host the kernel is up, then create shadows on request for ever.
 */
void lkl_init_server(void)
{
	int sig;

	for (sig = 1; sig < _NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			kernel_sigaction(sig, SIG_IGN);
	task_work_run();
	init_server_task = current;
	lkl_boot_complete();

	for (;;) {
		struct shadow *s;

		set_current_state(TASK_IDLE);
		s = take_all(&create_list);
		if (!s) {
			schedule();
			continue;
		}
		__set_current_state(TASK_RUNNING);
		while (s) {
			struct shadow *next = s->next_queued;
			pid_t pid;

			s->pending = 0;
			pid = user_mode_thread(shadow_main, s, CLONE_FS |
					       CLONE_FILES | CLONE_SIGHAND |
					       CLONE_THREAD);
			if (pid < 0) {
				s->ret = pid;
				__atomic_store_n(&s->in_call, 0,
						 __ATOMIC_SEQ_CST);
				lkl_ops->sem_up(s->done);
			}
			s = next;
		}
	}
}

static int __init syscall_irq_init(void)
{
	return request_irq(syscall_irq, syscall_interrupt, 0, "syscall",
			   NULL);
}
core_initcall(syscall_irq_init);

int lkl_syscalls_init(void)
{
	/* The key outlives a halt: exiting host threads still free records. */
	if (!shadow_key) {
		shadow_key = lkl_ops->tls_alloc(shadow_destructor);
		if (!shadow_key)
			return -ENOMEM;
	}
	syscall_irq = lkl_get_free_irq("syscall");
	return syscall_irq < 0 ? syscall_irq : 0;
}

void lkl_syscalls_cleanup(void)
{
	lkl_put_irq(syscall_irq, "syscall");
}
