/*
 * Guarded copies of syscall callers' memory (host_ops.user_copy and
 * user_clear): a fault inside them ends the copy instead of the process.
 */
#ifndef LKL_HOST_FAULT_H
#define LKL_HOST_FAULT_H

unsigned long host_user_copy(void *dst, const void *src, unsigned long len);
unsigned long host_user_clear(void *dst, unsigned long len);

#endif
