// SPDX-License-Identifier: GPL-2.0
/*
 * The two routines through which the kernel touches user memory
 * (asm/uaccess.h).  The host's versions resume at a fixup when the
 * access faults and return the bytes left uncopied; without them a bad
 * pointer is the host's fault to take.
 */
#include <linux/export.h>
#include <linux/string.h>
#include <asm/lkl.h>
#include <linux/uaccess.h>

unsigned long lkl_uaccess_copy(void *to, const void *from, unsigned long n)
{
	if (lkl_ops->user_copy)
		return lkl_ops->user_copy(to, from, n);
	memcpy(to, from, n);
	return 0;
}
EXPORT_SYMBOL(lkl_uaccess_copy);

unsigned long lkl_uaccess_clear(void *to, unsigned long n)
{
	if (lkl_ops->user_clear)
		return lkl_ops->user_clear(to, n);
	memset(to, 0, n);
	return 0;
}
EXPORT_SYMBOL(lkl_uaccess_clear);
