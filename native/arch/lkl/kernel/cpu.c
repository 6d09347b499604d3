// SPDX-License-Identifier: GPL-2.0
/*
 * The CPU lock.
 *
 * Kernel code runs on many host threads but only one at a time: the one
 * that holds the CPU.  Holding passes from task to task in __switch_to
 * without ever being released; it is released only by the idle task
 * when there is nothing to run, and taken by host threads that deliver
 * interrupts.  The lock is a binary host semaphore, because the thread
 * that takes it is not always the thread that gives it back.
 */
#include <linux/sched.h>
#include <linux/sched/idle.h>
#include <linux/cpu.h>
#include <linux/tick.h>
#include <linux/sched/task.h>
#include <asm/lkl.h>

/* kernel/time/tick-sched.c: false with "nohz=off" on the command line. */
extern bool tick_nohz_enabled;

static struct lkl_sem *cpu_sem;	/* 1 when the CPU is free */
static int cpu_shutdown;

bool lkl_cpu_is_shutdown(void)
{
	return __atomic_load_n(&cpu_shutdown, __ATOMIC_SEQ_CST);
}

/*
 * Block until the CPU is ours.  False once the kernel has halted: then
 * the CPU is never released again, so halt posts it once and every
 * waiter passes it on.
 */
bool lkl_cpu_take(void)
{
	lkl_ops->sem_down(cpu_sem);
	if (lkl_cpu_is_shutdown()) {
		lkl_ops->sem_up(cpu_sem);
		return false;
	}
	return true;
}

bool lkl_cpu_try_take(void)
{
	if (lkl_cpu_is_shutdown())
		return false;
	return lkl_ops->sem_trydown(cpu_sem);
}

/*
 * The idle task's own thread waits on its task semaphore both when it is
 * switched out and while it is parked in arch_cpu_idle() with the CPU
 * free.  It is woken from the park only by a switch to the idle task,
 * which hands it the CPU.
 */
static bool idle_parked;
/* The parked idle thread was woken by a switch to the idle task. */
static bool idle_switched_to;

/*
 * A host thread that holds the free CPU runs in the idle task's place.
 * When an interrupt it delivered made work, it runs the scheduler itself
 * (schedule_as_idle) instead of waking the idle thread to do it: one
 * host context switch less on every wakeup path.
 */
static bool idle_borrowed;
static void *borrow_jb[5];

void schedule_idle(void);	/* kernel/sched/core.c */

/*
 * A host thread that leaves its task for good (a direct syscall that
 * slept is done, park_and_leave) switches to the idle task when nothing
 * else is runnable.  If the idle thread is parked, the leaving thread
 * finishes that switch in the idle task's place and frees the CPU itself
 * (lkl_idle_finish_in_place), the way a borrower does, instead of waking
 * the idle thread only for it to do the same and park again: one host
 * wakeup and two context switches less per such syscall.
 */
static bool idle_in_place;

/* __switch_to() to the idle task by a leaving thread: true to stay. */
bool lkl_idle_switch_in_place(void)
{
	if (!idle_parked)
		return false;
	idle_in_place = true;
	return true;
}

/*
 * After a leaving thread's jump out of __switch_to: if it switched to
 * the idle task in place, finish the switch as the idle thread would
 * (arch_cpu_idle) and give the CPU back.
 */
void lkl_idle_finish_in_place(void)
{
	if (!idle_in_place)
		return;
	idle_in_place = false;
	schedule_tail(lkl_switched_from());
	tick_nohz_idle_enter();
	lkl_cpu_release(true);
}

/* __switch_to() is about to run the idle task. */
void lkl_idle_switched_to(void)
{
	if (idle_parked) {
		idle_parked = false;
		idle_switched_to = true;
	}
}

/*
 * __switch_to() is about to hand the CPU on from the idle task: if a host
 * thread is running the scheduler in idle's place, it must leave through
 * its jump buffer once the next task runs.  Decided, and the buffer
 * copied, before the hand-off: afterwards the idle thread itself (or
 * another borrower) may already be switching again.
 */
bool lkl_idle_leaving(void **jb)
{
	if (!idle_borrowed)
		return false;
	idle_borrowed = false;
	memcpy(jb, borrow_jb, sizeof(borrow_jb));
	return true;
}

/*
 * True if the CPU went to another task, false if idle stayed current.
 * Brackets the switch the way do_idle() does when it leaves its loop,
 * so the task that runs gets its tick back; arch_cpu_idle() re-enters
 * the idle state when the idle task is switched to again.
 */
static noinline bool schedule_as_idle(void)
{
	if (__builtin_setjmp(borrow_jb))
		return true;
	tick_nohz_idle_exit();
	idle_borrowed = true;
	schedule_idle();
	idle_borrowed = false;
	tick_nohz_idle_enter();
	return false;
}

/*
 * Give the CPU back, called with the idle task current by a host thread
 * that is not the idle thread (it delivered interrupts, or ran a direct
 * syscall: ran_work).  Interrupts raised while the CPU was held were left
 * pending; run them first, and look again after releasing, because a
 * host thread may have raised one between our last look and the release.
 */
void lkl_cpu_release(bool ran_work)
{
	for (;;) {
		if (!irqs_disabled() && lkl_irqs_pending()) {
			lkl_run_pending_irqs();
			ran_work = true;
		}
		if (tif_need_resched()) {
			if (schedule_as_idle())
				return;		/* the CPU went with the switch */
			continue;
		}
		/*
		 * With dyntick-idle, after anything ran in its place the idle
		 * loop must re-decide when the next tick is due (on hardware
		 * it wakes on every interrupt).  That step of the loop is
		 * done here, on the idle task's behalf.
		 */
		if (ran_work && tick_nohz_enabled && idle_parked) {
			local_irq_disable();
			tick_nohz_idle_stop_tick();
			local_irq_enable();
			ran_work = false;
			continue;
		}
		lkl_ops->sem_up(cpu_sem);
		if (!lkl_irqs_pending() || !lkl_cpu_try_take())
			return;
	}
}

void lkl_cpu_shutdown(void)
{
	__atomic_store_n(&cpu_shutdown, 1, __ATOMIC_SEQ_CST);
}

/* After halt: wake the host threads waiting for the CPU (they give up). */
void lkl_cpu_release_waiters(void)
{
	lkl_ops->sem_up(cpu_sem);
}

/*
 * cpu_sem is never freed: host threads that lost the race with halt may
 * still be passing it on.  One semaphore per process, as one kernel per
 * process.
 */
int lkl_cpu_init(void)
{
	cpu_sem = lkl_ops->sem_alloc(0);	/* the boot thread holds it */
	if (!cpu_sem)
		return -ENOMEM;
	cpu_shutdown = 0;
	idle_parked = idle_borrowed = idle_in_place = false;
	return 0;
}

/*
 * The idle task: called with interrupts off, returns with them on.  It
 * parks with the CPU free; other host threads then run in its place.
 */
void arch_cpu_idle(void)
{
	raw_local_irq_enable();
	for (;;) {
		if (lkl_irqs_pending())
			lkl_run_pending_irqs();
		if (need_resched())
			return;
		idle_parked = true;
		lkl_ops->sem_up(cpu_sem);
		/* An interrupt raised just before the release: deliver it. */
		if (!lkl_irqs_pending() || !lkl_cpu_try_take())
			break;
		idle_parked = false;
	}

	lkl_ops->sem_down(init_task.thread.sched_sem);
	if (READ_ONCE(init_task.thread.dead))
		lkl_ops->thread_exit();
	/* Woken with the CPU, switched to by another task. */
	if (idle_switched_to) {
		schedule_tail(lkl_switched_from());
		/* Back in the idle loop, which a borrowed switch had left. */
		tick_nohz_idle_enter();
	}
	idle_switched_to = false;
	raw_local_irq_enable();
	if (lkl_irqs_pending())
		lkl_run_pending_irqs();
}

void arch_cpu_idle_dead(void)
{
	lkl_ops->thread_exit();
	unreachable();
}
