/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
#include <asm/bitsperlong.h>

#if __BITS_PER_LONG == 64
#include <asm/unistd_64.h>
#else
#include <asm/unistd_32.h>
#endif

/*
 * lkl's own syscalls, in the range asm-generic keeps for architectures
 * (__NR_arch_specific_syscall, 244..259): zero-copy TCP receive
 * (kernel/zerocopy_rx.c, <asm/lkl_api.h>).
 */
#define __NR_lkl_recv_zerocopy		244
#define __NR_lkl_zerocopy_release	245
