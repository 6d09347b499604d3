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
#include <asm/lkl.h>

/* kernel/time/tick-sched.c: false with "nohz=off" on the command line. */
extern bool tick_nohz_enabled;

static struct lkl_sem *cpu_sem;	/* 1 when the CPU is free */
static struct lkl_sem *idle_sem;	/* wakes the idle task */
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
 * Give the CPU back.  Interrupts that were raised while it was held were
 * left pending for the holder; whoever releases runs them first, and
 * looks again after releasing, because a host thread may have raised
 * one between our last look and the release.
 *
 * ran_work: the caller ran kernel code in the idle task's place (a
 * direct syscall).
 */
void lkl_cpu_release(bool ran_work)
{
	for (;;) {
		if (!irqs_disabled() && lkl_irqs_pending()) {
			lkl_run_pending_irqs();
			ran_work = true;
		}
		/*
		 * The CPU is released only while the idle task is current.
		 * If an interrupt made work, the idle task must go and
		 * schedule it.  With dyntick-idle it must also run its loop
		 * once more after anything ran in its place, to re-decide
		 * when the next tick is due (on hardware the idle loop wakes
		 * on every interrupt); "nohz=off" makes the periodic tick do
		 * that instead, which is cheaper for direct syscalls.
		 */
		if (tif_need_resched() || (ran_work && tick_nohz_enabled))
			lkl_idle_kick();
		ran_work = false;
		lkl_ops->sem_up(cpu_sem);
		if (!lkl_irqs_pending() || !lkl_cpu_try_take())
			return;
	}
}

void lkl_idle_kick(void)
{
	lkl_ops->sem_up(idle_sem);
}

void lkl_cpu_shutdown(void)
{
	__atomic_store_n(&cpu_shutdown, 1, __ATOMIC_SEQ_CST);
	lkl_ops->sem_up(idle_sem);
}

/* After halt: wake the host threads waiting for the CPU (they give up). */
void lkl_cpu_release_waiters(void)
{
	lkl_ops->sem_up(cpu_sem);
}

int lkl_cpu_init(void)
{
	cpu_sem = lkl_ops->sem_alloc(0);	/* the boot thread holds it */
	idle_sem = lkl_ops->sem_alloc(0);
	if (!cpu_sem || !idle_sem)
		return -ENOMEM;
	cpu_shutdown = 0;
	return 0;
}

/*
 * cpu_sem is kept: host threads that lost the race with halt may still
 * be passing it on.  One semaphore per process, as one kernel per process.
 */
void lkl_cpu_cleanup(void)
{
	lkl_ops->sem_free(idle_sem);
	idle_sem = NULL;
}

/*
 * The idle task: called with interrupts off, returns with them on.
 * It is the only place the CPU is given away, so everything other host
 * threads hand in (interrupts, syscall requests) ends up here.
 */
void arch_cpu_idle(void)
{
	raw_local_irq_enable();
	if (need_resched())
		return;

	lkl_cpu_release(false);
	lkl_ops->sem_down(idle_sem);
	if (lkl_cpu_is_shutdown() || !lkl_cpu_take())
		lkl_ops->thread_exit();

	if (lkl_irqs_pending())
		lkl_run_pending_irqs();
}

void arch_cpu_idle_dead(void)
{
	lkl_ops->thread_exit();
	unreachable();
}
