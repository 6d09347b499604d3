/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
#ifndef _ASM_UAPI_LKL_BITSPERLONG_H
#define _ASM_UAPI_LKL_BITSPERLONG_H

#define __BITS_PER_LONG (__CHAR_BIT__ * __SIZEOF_LONG__)

#include <asm-generic/bitsperlong.h>

#endif
