// SPDX-License-Identifier: GPL-2.0
/*
 * Interrupts raised by host threads.
 *
 * lkl_trigger_irq() may be called from any host thread.  If the CPU is
 * free it takes it and runs the handler at once, on the calling thread;
 * otherwise the interrupt is marked pending and runs as soon as the
 * holder enables interrupts or releases the CPU.
 */
#include <linux/interrupt.h>
#include <linux/irq.h>
#include <linux/hardirq.h>
#include <linux/irqchip/chained_irq.h>
#include <linux/seq_file.h>
#include <asm/irq_regs.h>
#include <asm/lkl.h>

unsigned long lkl_irq_flag = ARCH_IRQ_DISABLED;

#define IRQ_WORDS	BITS_TO_LONGS(NR_IRQS)

static unsigned long pending_mask[IRQ_WORDS];
static int any_pending;
static bool running_irqs;

/* Which IRQ numbers are handed out. */
static DECLARE_BITMAP(used_irqs, NR_IRQS);
static const char *irq_users[NR_IRQS];

bool lkl_irqs_pending(void)
{
	return __atomic_load_n(&any_pending, __ATOMIC_SEQ_CST);
}

/*
 * The interrupted context, as the generic code sees it.  It matters:
 * the tick runs update_process_times() (timer wheel, scheduler tick,
 * RCU) only when get_irq_regs() is set.  Nothing runs in user mode, so
 * one zeroed pt_regs serves every interrupt.
 */
static struct pt_regs irq_regs;

static void run_irq(int irq)
{
	struct pt_regs *old = set_irq_regs(&irq_regs);

	irq_enter();
	generic_handle_irq(irq);
	irq_exit();
	set_irq_regs(old);
}

/* Runs with the CPU held and interrupts enabled. */
void lkl_run_pending_irqs(void)
{
	unsigned long flags;
	int w;

	if (running_irqs || in_interrupt())
		return;
	running_irqs = true;

	while (__atomic_exchange_n(&any_pending, 0, __ATOMIC_SEQ_CST)) {
		for (w = 0; w < IRQ_WORDS; w++) {
			unsigned long bits;

			bits = __atomic_exchange_n(&pending_mask[w], 0,
						   __ATOMIC_SEQ_CST);
			while (bits) {
				int bit = __ffs(bits);

				bits &= ~(1UL << bit);
				/* Handlers run with interrupts off, as on hardware. */
				raw_local_irq_save(flags);
				run_irq(w * BITS_PER_LONG + bit);
				raw_local_irq_restore(flags);
			}
		}
	}

	running_irqs = false;
	lkl_direct_irqs_done();
}

void lkl_irqs_enabled(void)
{
	if (unlikely(lkl_irqs_pending()))
		lkl_run_pending_irqs();
}

int lkl_trigger_irq(int irq)
{
	if (irq <= 0 || irq >= NR_IRQS)
		return -EINVAL;
	if (lkl_cpu_is_shutdown())
		return -ENODEV;

	__atomic_fetch_or(&pending_mask[irq / BITS_PER_LONG],
			  1UL << (irq % BITS_PER_LONG), __ATOMIC_SEQ_CST);
	__atomic_store_n(&any_pending, 1, __ATOMIC_SEQ_CST);

	/*
	 * Deliver it ourselves if the CPU is free.  The release re-checks
	 * the pending set, so an interrupt never waits for an idle CPU.
	 */
	if (lkl_cpu_try_take())
		lkl_cpu_release(false);
	return 0;
}

int lkl_get_free_irq(const char *user)
{
	int irq;

	/* Host threads allocate IRQs for their devices without the CPU. */
	for (irq = 1; irq < NR_IRQS; irq++) {
		unsigned long bit = 1UL << (irq % BITS_PER_LONG);
		unsigned long old;

		old = __atomic_fetch_or(&used_irqs[irq / BITS_PER_LONG], bit,
					__ATOMIC_SEQ_CST);
		if (!(old & bit)) {
			irq_users[irq] = user;
			return irq;
		}
	}
	return -ENOSPC;
}

void lkl_put_irq(int irq, const char *user)
{
	if (irq <= 0 || irq >= NR_IRQS || !test_bit(irq, used_irqs))
		return;
	irq_users[irq] = NULL;
	__atomic_fetch_and(&used_irqs[irq / BITS_PER_LONG],
			   ~(1UL << (irq % BITS_PER_LONG)), __ATOMIC_SEQ_CST);
}

void __init init_IRQ(void)
{
	int irq;

	for (irq = 0; irq < NR_IRQS; irq++)
		irq_set_chip_and_handler(irq, &dummy_irq_chip,
					 handle_simple_irq);
}

int arch_show_interrupts(struct seq_file *p, int prec)
{
	return 0;
}
