/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _ASM_LKL_UACCESS_H
#define _ASM_LKL_UACCESS_H

/*
 * User memory is host memory, but without an MMU nothing stops a bad
 * pointer: every access to it goes through two routines (uaccess.c) that
 * the host may run under a fault fixup, as the kernel's exception tables
 * do.  A fault then ends the copy and the caller gets the uncopied byte
 * count, so the syscall fails with -EFAULT instead of the process dying.
 */
#include <linux/compiler.h>
#include <linux/types.h>

unsigned long lkl_uaccess_copy(void *to, const void *from, unsigned long n);
unsigned long lkl_uaccess_clear(void *to, unsigned long n);

static inline __must_check unsigned long
raw_copy_from_user(void *to, const void __user *from, unsigned long n)
{
	return lkl_uaccess_copy(to, (const void __force *)from, n);
}

static inline __must_check unsigned long
raw_copy_to_user(void __user *to, const void *from, unsigned long n)
{
	return lkl_uaccess_copy((void __force *)to, from, n);
}
#define INLINE_COPY_FROM_USER
#define INLINE_COPY_TO_USER

static inline __must_check unsigned long
__clear_user(void __user *to, unsigned long n)
{
	return lkl_uaccess_clear((void __force *)to, n);
}
#define __clear_user __clear_user

/* copy_from_kernel_nofault() and friends: the same guarded copy. */
#define __get_kernel_nofault(dst, src, type, err_label)			\
do {									\
	if (lkl_uaccess_copy((dst), (src), sizeof(type)))		\
		goto err_label;						\
} while (0)

#define __put_kernel_nofault(dst, src, type, err_label)			\
do {									\
	if (lkl_uaccess_copy((dst), (src), sizeof(type)))		\
		goto err_label;						\
} while (0)

#include <asm-generic/uaccess.h>

#endif
