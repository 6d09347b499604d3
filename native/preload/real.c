/*
 * The host's libc functions that the library also interposes, found
 * with dlsym(RTLD_NEXT) on first use.  Our own code and the kernel
 * library's host side (its copy of host.o has these names renamed to
 * the preload_host_* ones below, see host-syms.txt) call them, so that
 * a TAP read or an AF_PACKET backend socket never enters our wrappers.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "preload.h"
#include "../common/optional_arg.h"

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
REAL(int, accept4, (int, struct sockaddr *, socklen_t *, int))
REAL(int, connect, (int, const struct sockaddr *, socklen_t))
REAL(int, listen, (int, int))
REAL(int, shutdown, (int, int))
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

/* ---- internal fds ----------------------------------------------------------- */

/*
 * The library's own host fds (the kernel library's TAP, epoll and
 * eventfds, each socket's far end of its pair) are not the program's:
 * close(), close_range() and closefrom() leave them alone, dup2() onto
 * one fails with EBUSY.  The kernel library's are moved to high numbers
 * (the program's own dup2(x, 3) and the like stay clear of them).
 */
#define INTERNAL_MAX (1 << 20)
#define INTERNAL_HIGH_SPAN 64
static unsigned long internal_bits[INTERNAL_MAX / (8 * sizeof(unsigned long))];
#define BITS_PER (8 * sizeof(unsigned long))

void fd_set_internal(int fd, int on)
{
	unsigned long bit;

	if (fd < 0 || fd >= INTERNAL_MAX)
		return;
	bit = 1UL << (fd % BITS_PER);
	if (on)
		__atomic_or_fetch(&internal_bits[fd / BITS_PER], bit,
				  __ATOMIC_RELAXED);
	else
		__atomic_and_fetch(&internal_bits[fd / BITS_PER], ~bit,
				   __ATOMIC_RELAXED);
}

int fd_is_internal(int fd)
{
	return fd >= 0 && fd < INTERNAL_MAX &&
	       (__atomic_load_n(&internal_bits[fd / BITS_PER],
				__ATOMIC_RELAXED) >> (fd % BITS_PER)) & 1;
}

/* fd moved up (close-on-exec kept) and marked internal. */
static int internal_fd(int fd)
{
	struct rlimit rl;
	long base = 1024;
	int high, cloexec;

	if (fd < 0)
		return fd;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)base)
		base = (long)rl.rlim_cur;
	base -= INTERNAL_HIGH_SPAN;
	if (base > fd) {
		cloexec = get_fcntl()(fd, F_GETFD) & FD_CLOEXEC;
		high = get_fcntl()(fd, cloexec ? F_DUPFD_CLOEXEC : F_DUPFD, base);
		if (high >= 0) {
			get_close()(fd);
			fd = high;
		}
		/* Else the high range is full: keep the number it has. */
	}
	fd_set_internal(fd, 1);
	return fd;
}

/* ---- the kernel library's host side, renamed (host-syms.txt) --------------- */

REAL(int, open, (const char *, int, ...))
REAL(unsigned int, if_nametoindex, (const char *))
REAL(int, eventfd, (unsigned int, int))
REAL(int, epoll_create1, (int))

int preload_host_open(const char *path, int flags, ...)
{
	int mode = OPTIONAL_ARG(flags, int, flags & (O_CREAT | O_TMPFILE));

	return internal_fd(get_open()(path, flags, mode));
}

unsigned int preload_host_if_nametoindex(const char *name)
{
	return get_if_nametoindex()(name);
}

int preload_host_eventfd(unsigned int count, int flags)
{
	return internal_fd(get_eventfd()(count, flags));
}

int preload_host_epoll_create1(int flags)
{
	return internal_fd(get_epoll_create1()(flags));
}

int preload_host_socket(int d, int t, int p)
{
	return internal_fd(host_socket(d, t, p));
}
int preload_host_socketpair(int d, int t, int p, int sv[2])
{
	int ret = host_socketpair(d, t, p, sv);

	if (ret == 0) {
		sv[0] = internal_fd(sv[0]);
		sv[1] = internal_fd(sv[1]);
	}
	return ret;
}
int preload_host_close(int fd)
{
	fd_set_internal(fd, 0);
	return host_close(fd);
}
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
/* The control server's (native/control) own socket calls. */
int preload_host_accept4(int fd, struct sockaddr *a, socklen_t *l, int f)
{
	return get_accept4()(fd, a, l, f);
}
int preload_host_connect(int fd, const struct sockaddr *a, socklen_t l)
{
	return get_connect()(fd, a, l);
}
int preload_host_listen(int fd, int n)
{
	return get_listen()(fd, n);
}
int preload_host_shutdown(int fd, int how)
{
	return get_shutdown()(fd, how);
}
ssize_t preload_host_send(int fd, const void *b, size_t n, int f)
{
	return get_send()(fd, b, n, f);
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
	return get_fcntl()(fd, cmd, OPTIONAL_ARG(cmd, long, 1));
}
int preload_host_ioctl(int fd, unsigned long req, ...)
{
	return get_ioctl()(fd, req, OPTIONAL_ARG(req, void *, 1));
}
