/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _ASM_LKL_STRING_H
#define _ASM_LKL_STRING_H

/*
 * The memory routines go to the host's (lkl_ops), which are tuned for the
 * processor; lib/string.c's generic versions serve for everything else.
 */
#define __HAVE_ARCH_MEMCPY
#define __HAVE_ARCH_MEMSET
#define __HAVE_ARCH_MEMMOVE

extern void *memcpy(void *dst, const void *src, __kernel_size_t len);
extern void *memset(void *s, int c, __kernel_size_t len);
extern void *memmove(void *dst, const void *src, __kernel_size_t len);

#endif
