/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _ASM_LKL_DELAY_H
#define _ASM_LKL_DELAY_H

/* Delays spin on the host clock (time.c), not on a calibrated loop. */
void __ndelay(unsigned long nsecs);
void __udelay(unsigned long usecs);
void __delay(unsigned long loops);

#define ndelay(n)	__ndelay(n)
#define udelay(n)	__udelay(n)

#endif
