/*
 * The host's libc functions that the library also interposes, found
 * with dlsym(RTLD_NEXT) on first use.  Our own code and the kernel
 * library's host side (its copy of host.o has these names renamed to
 * the preload_host_* ones below, see host-syms.txt) call them, so that
 * a TAP read or an AF_PACKET backend socket never enters our wrappers.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "preload.h"

void *preload_real(const char *name, void **slot)
{
	void *fn = __atomic_load_n(slot, __ATOMIC_ACQUIRE);

	if (!fn) {
		fn = dlsym(RTLD_NEXT, name);
		if (!fn) {
			fprintf(stderr, "lkl-preload: no libc %s\n", name);
			abort();
		}
		__atomic_store_n(slot, fn, __ATOMIC_RELEASE);
	}
	return fn;
}

#define REAL(ret, name, params)						\
	static void *real_##name;					\
	typedef ret (*name##_fn) params;				\
	static inline name##_fn get_##name(void)			\
	{								\
		return (name##_fn)preload_real(#name, &real_##name);		\
	}

REAL(int, socket, (int, int, int))
REAL(int, socketpair, (int, int, int, int *))
REAL(int, close, (int))
REAL(ssize_t, read, (int, void *, size_t))
REAL(ssize_t, write, (int, const void *, size_t))
REAL(ssize_t, readv, (int, const struct iovec *, int))
REAL(ssize_t, writev, (int, const struct iovec *, int))
REAL(ssize_t, recv, (int, void *, size_t, int))
REAL(ssize_t, send, (int, const void *, size_t, int))
REAL(ssize_t, recvmsg, (int, struct msghdr *, int))
REAL(ssize_t, sendmsg, (int, const struct msghdr *, int))
REAL(int, bind, (int, const struct sockaddr *, socklen_t))
REAL(int, setsockopt, (int, int, int, const void *, socklen_t))
REAL(int, getsockopt, (int, int, int, void *, socklen_t *))
REAL(int, fcntl, (int, int, ...))
REAL(int, ioctl, (int, unsigned long, ...))
REAL(int, dup, (int))
REAL(int, dup3, (int, int, int))

int host_socket(int d, int t, int p) { return get_socket()(d, t, p); }
int host_socketpair(int d, int t, int p, int sv[2])
{
	return get_socketpair()(d, t, p, sv);
}
int host_close(int fd) { return get_close()(fd); }
ssize_t host_read(int fd, void *b, size_t n) { return get_read()(fd, b, n); }
ssize_t host_write(int fd, const void *b, size_t n)
{
	return get_write()(fd, b, n);
}
ssize_t host_recv(int fd, void *b, size_t n, int f)
{
	return get_recv()(fd, b, n, f);
}
ssize_t host_send(int fd, const void *b, size_t n, int f)
{
	return get_send()(fd, b, n, f);
}
int host_setsockopt(int fd, int l, int n, const void *v, socklen_t len)
{
	return get_setsockopt()(fd, l, n, v, len);
}
int host_fcntl(int fd, int cmd, long arg) { return get_fcntl()(fd, cmd, arg); }
int host_dup(int fd) { return get_dup()(fd); }
int host_dup3(int fd, int nfd, int fl) { return get_dup3()(fd, nfd, fl); }

/* ---- the kernel library's host side, renamed (host-syms.txt) --------------- */

int preload_host_socket(int d, int t, int p) { return host_socket(d, t, p); }
int preload_host_socketpair(int d, int t, int p, int sv[2])
{
	return host_socketpair(d, t, p, sv);
}
int preload_host_close(int fd) { return host_close(fd); }
ssize_t preload_host_read(int fd, void *b, size_t n)
{
	return host_read(fd, b, n);
}
ssize_t preload_host_write(int fd, const void *b, size_t n)
{
	return host_write(fd, b, n);
}
ssize_t preload_host_readv(int fd, const struct iovec *v, int n)
{
	return get_readv()(fd, v, n);
}
ssize_t preload_host_writev(int fd, const struct iovec *v, int n)
{
	return get_writev()(fd, v, n);
}
ssize_t preload_host_recvmsg(int fd, struct msghdr *m, int f)
{
	return get_recvmsg()(fd, m, f);
}
ssize_t preload_host_sendmsg(int fd, const struct msghdr *m, int f)
{
	return get_sendmsg()(fd, m, f);
}
int preload_host_bind(int fd, const struct sockaddr *a, socklen_t l)
{
	return get_bind()(fd, a, l);
}
int preload_host_setsockopt(int fd, int l, int n, const void *v, socklen_t len)
{
	return host_setsockopt(fd, l, n, v, len);
}
int preload_host_getsockopt(int fd, int l, int n, void *v, socklen_t *len)
{
	return get_getsockopt()(fd, l, n, v, len);
}
int preload_host_fcntl(int fd, int cmd, ...)
{
	va_list ap;
	long arg;

	va_start(ap, cmd);
	arg = va_arg(ap, long);
	va_end(ap);
	return get_fcntl()(fd, cmd, arg);
}
int preload_host_ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	return get_ioctl()(fd, req, arg);
}
