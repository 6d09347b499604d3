/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _ASM_LKL_PTRACE_H
#define _ASM_LKL_PTRACE_H

#include <uapi/asm/ptrace.h>

#ifndef __ASSEMBLY__
/* Nothing ever runs in user mode: callers are host code. */
#define user_mode(regs)			(0)
#define instruction_pointer(regs)	(0)
#define profile_pc(regs)		(0)
#define user_stack_pointer(regs)	(0)
#define current_user_stack_pointer()	(0)
#endif

#endif
