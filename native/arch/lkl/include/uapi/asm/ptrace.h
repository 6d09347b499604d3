/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
#ifndef _ASM_UAPI_LKL_PTRACE_H
#define _ASM_UAPI_LKL_PTRACE_H

#ifndef __ASSEMBLY__
/* Syscalls arrive as a call, not a trap: the registers are the arguments. */
struct pt_regs {
	unsigned long syscallno;
	unsigned long args[6];
	unsigned long ret;
};
#endif

#endif
