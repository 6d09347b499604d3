// SPDX-License-Identifier: GPL-2.0
/*
 * memcpy, memset and memmove: the host's when it offers them (glibc's are
 * tuned for the processor), else simple word-at-a-time loops.  The
 * kernel's generic versions copy a byte at a time, which alone cost half
 * of a receiver's time.
 */
#include <linux/string.h>
#include <linux/export.h>
#include <asm/lkl.h>

void *memcpy(void *dst, const void *src, __kernel_size_t len)
{
	unsigned long *d = dst;
	const unsigned long *s = src;
	char *dc;
	const char *sc;

	if (lkl_ops && lkl_ops->memcpy)
		return lkl_ops->memcpy(dst, src, len);
	for (; len >= sizeof(long); len -= sizeof(long))
		*d++ = *s++;
	for (dc = (char *)d, sc = (const char *)s; len; len--)
		*dc++ = *sc++;
	return dst;
}
EXPORT_SYMBOL(memcpy);

void *memset(void *p, int c, __kernel_size_t len)
{
	char *d = p;

	if (lkl_ops && lkl_ops->memset)
		return lkl_ops->memset(p, c, len);
	while (len--)
		*d++ = c;
	return p;
}
EXPORT_SYMBOL(memset);

void *memmove(void *dst, const void *src, __kernel_size_t len)
{
	char *d = dst;
	const char *s = src;

	if (lkl_ops && lkl_ops->memmove)
		return lkl_ops->memmove(dst, src, len);
	if (d <= s || d >= s + len) {
		while (len--)
			*d++ = *s++;
	} else {
		d += len;
		s += len;
		while (len--)
			*--d = *--s;
	}
	return dst;
}
EXPORT_SYMBOL(memmove);
