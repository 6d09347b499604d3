/*
 * Bad user pointers become -EFAULT, as the kernel's exception tables
 * make them on a machine with an MMU.
 *
 * Every access the kernel makes to a syscall caller's memory goes
 * through host_user_copy or host_user_clear, whose copying instructions
 * all lie between two known addresses and keep the count of bytes not
 * yet done in %rcx (a string instruction, or for copies below a page a
 * 64-byte loop that counts a turn once it is stored).  A SIGSEGV or
 * SIGBUS whose faulting instruction lies between them resumes at the
 * fixup, which returns %rcx: the bytes not copied (for the loop, at most
 * 63 more than were, which the kernel's contract allows).  Any other fault goes to the handler that was
 * installed before ours (or the default action), so the process's own
 * crash handling is unchanged.  A good copy pays no check for this;
 * against glibc's memcpy it costs a few ns below 2 KiB and nothing from
 * a page up (bench/results/usercopy.md).
 *
 * The handler is installed on the first guarded copy (during boot), so
 * that a handler the application set earlier (Python's faulthandler)
 * is the one chained to.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <ucontext.h>

#include "fault.h"

#if !defined(__x86_64__)
#error "fault.c: the guarded copies are written for x86-64"
#endif

/* The guarded region and its fixup, in .text. */
extern const char host_uaccess_begin[], host_uaccess_end[],
	host_uaccess_fixup[];

unsigned long host_uaccess_movsb(void *dst, const void *src,
				 unsigned long len);
unsigned long host_uaccess_stosb(void *dst, unsigned long len);

__asm__(
	".text\n"
	".globl host_uaccess_movsb\n"
	".type host_uaccess_movsb, @function\n"
	"host_uaccess_movsb:\n"		/* rdi dst, rsi src, rdx len */
	"	movq %rdx, %rcx\n"		/* rcx: bytes not yet copied */
	"host_uaccess_begin:\n"
	"	cmpq $4096, %rcx\n"
	"	jae 5f\n"
	"	cmpq $64, %rcx\n"
	"	jb 2f\n"
	/* Below a page: 64 bytes a turn, as fast as glibc's for these. */
	"1:	movdqu (%rsi), %xmm0\n"
	"	movdqu 16(%rsi), %xmm1\n"
	"	movdqu 32(%rsi), %xmm2\n"
	"	movdqu 48(%rsi), %xmm3\n"
	"	movdqu %xmm0, (%rdi)\n"
	"	movdqu %xmm1, 16(%rdi)\n"
	"	movdqu %xmm2, 32(%rdi)\n"
	"	movdqu %xmm3, 48(%rdi)\n"
	"	addq $64, %rsi\n"
	"	addq $64, %rdi\n"
	"	subq $64, %rcx\n"
	"	cmpq $64, %rcx\n"
	"	jae 1b\n"
	"2:	cmpq $8, %rcx\n"
	"	jb 3f\n"
	"	movq (%rsi), %rax\n"
	"	movq %rax, (%rdi)\n"
	"	addq $8, %rsi\n"
	"	addq $8, %rdi\n"
	"	subq $8, %rcx\n"
	"	jmp 2b\n"
	"3:	testq %rcx, %rcx\n"
	"	jz 4f\n"
	"	movb (%rsi), %al\n"
	"	movb %al, (%rdi)\n"
	"	incq %rsi\n"
	"	incq %rdi\n"
	"	decq %rcx\n"
	"	jmp 3b\n"
	"4:	xorl %eax, %eax\n"
	"	ret\n"
	/* A page or more: the string instruction (ERMS) is the fastest. */
	"5:	rep movsb\n"
	"	xorl %eax, %eax\n"
	"	ret\n"
	".size host_uaccess_movsb, .-host_uaccess_movsb\n"
	".globl host_uaccess_stosb\n"
	".type host_uaccess_stosb, @function\n"
	"host_uaccess_stosb:\n"		/* rdi dst, rsi len */
	"	movq %rsi, %rcx\n"
	"	xorl %eax, %eax\n"
	"	rep stosb\n"
	"	ret\n"
	".size host_uaccess_stosb, .-host_uaccess_stosb\n"
	"host_uaccess_end:\n"
	"host_uaccess_fixup:\n"		/* %rcx: bytes not done */
	"	movq %rcx, %rax\n"
	"	ret\n"
);

static struct sigaction previous_segv, previous_bus;
static pthread_once_t installed = PTHREAD_ONCE_INIT;

static void chain(int sig, siginfo_t *info, void *uc)
{
	struct sigaction *prev = sig == SIGBUS ? &previous_bus : &previous_segv;

	if (prev->sa_flags & SA_SIGINFO) {
		prev->sa_sigaction(sig, info, uc);
	} else if (prev->sa_handler == SIG_DFL ||
		   prev->sa_handler == SIG_IGN) {
		/* Re-executed, the instruction faults again: default action. */
		signal(sig, SIG_DFL);
	} else {
		prev->sa_handler(sig);
	}
}

static void on_fault(int sig, siginfo_t *info, void *ucv)
{
	ucontext_t *uc = ucv;
	uintptr_t pc = uc->uc_mcontext.gregs[REG_RIP];

	if (pc >= (uintptr_t)host_uaccess_begin &&
	    pc < (uintptr_t)host_uaccess_end) {
		uc->uc_mcontext.gregs[REG_RIP] = (greg_t)host_uaccess_fixup;
		return;
	}
	chain(sig, info, ucv);
}

static void install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_fault;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, &previous_segv);
	sigaction(SIGBUS, &sa, &previous_bus);
}

unsigned long host_user_copy(void *dst, const void *src, unsigned long len)
{
	pthread_once(&installed, install);
	return host_uaccess_movsb(dst, src, len);
}

unsigned long host_user_clear(void *dst, unsigned long len)
{
	pthread_once(&installed, install);
	return host_uaccess_stosb(dst, len);
}
