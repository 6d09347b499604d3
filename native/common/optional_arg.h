/*
 * The optional argument of a variadic libc call (open's mode, fcntl's
 * and ioctl's arg), for the wrappers in attach/ and preload/.
 */
#ifndef LKL_NATIVE_OPTIONAL_ARG_H
#define LKL_NATIVE_OPTIONAL_ARG_H

#include <stdarg.h>

/*
 * The argument after the last named parameter `last`, read as `type`;
 * 0 when `present` is false (the caller passed none).  A statement
 * expression: only inside the variadic function whose parameter is last.
 */
#define OPTIONAL_ARG(last, type, present) ({		\
	type optional_arg_ = 0;				\
							\
	if (present) {					\
		va_list ap_;				\
							\
		va_start(ap_, last);			\
		optional_arg_ = va_arg(ap_, type);	\
		va_end(ap_);				\
	}						\
	optional_arg_;					\
})

#endif
