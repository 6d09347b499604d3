/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _ASM_LKL_IRQFLAGS_H
#define _ASM_LKL_IRQFLAGS_H

#define ARCH_IRQ_ENABLED	1
#define ARCH_IRQ_DISABLED	0

#ifndef __ASSEMBLY__
/*
 * The interrupt flag is a plain variable: interrupts are delivered only
 * by host threads that hold the CPU, so enabling them is the moment to
 * run what arrived while they were off (irq.c).
 */
extern unsigned long lkl_irq_flag;
void lkl_irqs_enabled(void);

static inline unsigned long arch_local_save_flags(void)
{
	return lkl_irq_flag;
}

static inline void arch_local_irq_restore(unsigned long flags)
{
	lkl_irq_flag = flags;
	if (flags == ARCH_IRQ_ENABLED)
		lkl_irqs_enabled();
}
#endif

#include <asm-generic/irqflags.h>

#endif
