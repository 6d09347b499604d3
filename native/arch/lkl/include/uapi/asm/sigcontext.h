/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
#ifndef _ASM_UAPI_LKL_SIGCONTEXT_H
#define _ASM_UAPI_LKL_SIGCONTEXT_H

#include <asm/ptrace.h>

/* No user mode to return to, so no machine state worth saving. */
struct sigcontext {
	struct pt_regs regs;
	unsigned long oldmask;
};

#endif
