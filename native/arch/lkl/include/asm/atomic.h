/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _ASM_LKL_ATOMIC_H
#define _ASM_LKL_ATOMIC_H

#include <linux/types.h>
#include <asm/cmpxchg.h>
#include <asm/barrier.h>

/*
 * atomic_t and atomic64_t from the compiler's atomics.  Value-returning
 * operations are fully ordered; the generic fallbacks derive the
 * _acquire/_release/_relaxed forms from them.
 */
#define ATOMIC64_INIT(i)	{ (i) }

#define LKL_ATOMIC_OPS(pfx, type)					\
static inline type arch_##pfx##_read(const pfx##_t *v)			\
{									\
	return __atomic_load_n(&v->counter, __ATOMIC_RELAXED);		\
}									\
static inline void arch_##pfx##_set(pfx##_t *v, type i)		\
{									\
	__atomic_store_n(&v->counter, i, __ATOMIC_RELAXED);		\
}									\
LKL_ATOMIC_OP(pfx, type, add)						\
LKL_ATOMIC_OP(pfx, type, sub)						\
LKL_ATOMIC_OP(pfx, type, and)						\
LKL_ATOMIC_OP(pfx, type, or)						\
LKL_ATOMIC_OP(pfx, type, xor)						\
static inline type arch_##pfx##_add_return(type i, pfx##_t *v)	\
{									\
	return __atomic_add_fetch(&v->counter, i, __ATOMIC_SEQ_CST);	\
}									\
static inline type arch_##pfx##_sub_return(type i, pfx##_t *v)	\
{									\
	return __atomic_sub_fetch(&v->counter, i, __ATOMIC_SEQ_CST);	\
}									\
static inline type arch_##pfx##_xchg(pfx##_t *v, type n)		\
{									\
	return __atomic_exchange_n(&v->counter, n, __ATOMIC_SEQ_CST);	\
}									\
static inline type arch_##pfx##_cmpxchg(pfx##_t *v, type o, type n)	\
{									\
	__atomic_compare_exchange_n(&v->counter, &o, n, false,		\
				    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);\
	return o;							\
}

#define LKL_ATOMIC_OP(pfx, type, op)					\
static inline void arch_##pfx##_##op(type i, pfx##_t *v)		\
{									\
	__atomic_fetch_##op(&v->counter, i, __ATOMIC_RELAXED);		\
}									\
static inline type arch_##pfx##_fetch_##op(type i, pfx##_t *v)	\
{									\
	return __atomic_fetch_##op(&v->counter, i, __ATOMIC_SEQ_CST);	\
}

LKL_ATOMIC_OPS(atomic, int)
LKL_ATOMIC_OPS(atomic64, s64)

#undef LKL_ATOMIC_OP
#undef LKL_ATOMIC_OPS

#define arch_atomic_read		arch_atomic_read
#define arch_atomic_set			arch_atomic_set
#define arch_atomic_add			arch_atomic_add
#define arch_atomic_sub			arch_atomic_sub
#define arch_atomic_and			arch_atomic_and
#define arch_atomic_or			arch_atomic_or
#define arch_atomic_xor			arch_atomic_xor
#define arch_atomic_add_return		arch_atomic_add_return
#define arch_atomic_sub_return		arch_atomic_sub_return
#define arch_atomic_fetch_add		arch_atomic_fetch_add
#define arch_atomic_fetch_sub		arch_atomic_fetch_sub
#define arch_atomic_fetch_and		arch_atomic_fetch_and
#define arch_atomic_fetch_or		arch_atomic_fetch_or
#define arch_atomic_fetch_xor		arch_atomic_fetch_xor
#define arch_atomic_xchg		arch_atomic_xchg
#define arch_atomic_cmpxchg		arch_atomic_cmpxchg

#define arch_atomic64_read		arch_atomic64_read
#define arch_atomic64_set		arch_atomic64_set
#define arch_atomic64_add		arch_atomic64_add
#define arch_atomic64_sub		arch_atomic64_sub
#define arch_atomic64_and		arch_atomic64_and
#define arch_atomic64_or		arch_atomic64_or
#define arch_atomic64_xor		arch_atomic64_xor
#define arch_atomic64_add_return	arch_atomic64_add_return
#define arch_atomic64_sub_return	arch_atomic64_sub_return
#define arch_atomic64_fetch_add		arch_atomic64_fetch_add
#define arch_atomic64_fetch_sub		arch_atomic64_fetch_sub
#define arch_atomic64_fetch_and		arch_atomic64_fetch_and
#define arch_atomic64_fetch_or		arch_atomic64_fetch_or
#define arch_atomic64_fetch_xor		arch_atomic64_fetch_xor
#define arch_atomic64_xchg		arch_atomic64_xchg
#define arch_atomic64_cmpxchg		arch_atomic64_cmpxchg

#endif
