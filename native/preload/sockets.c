/*
 * The interposed socket API.  AF_INET, AF_INET6, AF_NETLINK and
 * AF_PACKET sockets are the kernel's; every other family, and every
 * call on a host fd, goes to libc unchanged.  On x86-64 the kernel's
 * sockaddr, msghdr, mmsghdr, cmsg, timeval and timespec layouts and the
 * socket, option, flag and ioctl numbers are the host's, so arguments
 * pass through as they are (checked below).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>

#include <lkl/asm/unistd.h>
#include <lkl/asm-generic/errno.h>
#include <lkl/asm-generic/fcntl.h>
#include <lkl/asm-generic/socket.h>
#include <lkl/linux/socket.h>
#include <lkl/linux/socket_abi.h>
#include <lkl/linux/in.h>

#include "preload.h"

_Static_assert(sizeof(struct msghdr) == sizeof(struct lkl_user_msghdr) &&
	       sizeof(struct mmsghdr) == sizeof(struct lkl_mmsghdr) &&
	       sizeof(struct sockaddr_storage) ==
	       sizeof(struct lkl__kernel_sockaddr_storage),
	       "kernel and host socket structures differ");
_Static_assert(LKL_SOCK_NONBLOCK == SOCK_NONBLOCK &&
	       LKL_SOCK_CLOEXEC == SOCK_CLOEXEC &&
	       LKL_MSG_NOSIGNAL == MSG_NOSIGNAL &&
	       LKL_MSG_DONTWAIT == MSG_DONTWAIT &&
	       LKL_SOL_SOCKET == SOL_SOCKET && LKL_SO_ERROR == SO_ERROR &&
	       LKL_SO_RCVTIMEO_OLD == SO_RCVTIMEO &&
	       LKL_O_NONBLOCK == O_NONBLOCK && LKL_EPIPE == EPIPE &&
	       LKL_EAGAIN == EAGAIN && LKL_EINPROGRESS == EINPROGRESS,
	       "kernel and host socket constants differ");

static int kernel_family(int domain)
{
	return domain == AF_INET || domain == AF_INET6 ||
	       domain == AF_NETLINK || domain == AF_PACKET;
}

void preload_sigpipe(void)
{
	pthread_kill(pthread_self(), SIGPIPE);
}

long ksend_result(long ret, int flags)
{
	if (ret == -EPIPE && !(flags & MSG_NOSIGNAL))
		preload_sigpipe();
	return ret;
}

EXPORT int socket(int domain, int type, int protocol)
{
	long kfd;

	if (!kernel_family(domain))
		return HOST_FN(socket)(domain, type, protocol);
	if (preload_forked || !preload_running) {
		errno = ENETDOWN;
		return -1;
	}
	kfd = ksys(LKL__NR_socket, domain, type & ~SOCK_CLOEXEC, protocol,
		   0, 0, 0);
	if (kfd < 0)
		return (int)kret(kfd);
	return fdmap_new((int)kfd, type & SOCK_CLOEXEC);
}

EXPORT int socketpair(int domain, int type, int protocol, int sv[2])
{
	if (!kernel_family(domain))
		return HOST_FN(socketpair)(domain, type, protocol, sv);
	/* As Linux: no pairs of network sockets. */
	errno = EOPNOTSUPP;
	return -1;
}

EXPORT int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
	ROUTE(fd, s, HOST_FN(bind)(fd, addr, len));
	return (int)lsock_done_nosync(s, ksys(LKL__NR_bind, lsock_kfd(s),
					     (long)addr, len, 0, 0, 0));
}

EXPORT int listen(int fd, int backlog)
{
	ROUTE(fd, s, HOST_FN(listen)(fd, backlog));
	return (int)lsock_done(s, ksys(LKL__NR_listen, lsock_kfd(s), backlog,
				       0, 0, 0, 0));
}

EXPORT int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
	long kfd;

	ROUTE(fd, s, HOST_FN(accept4)(fd, addr, len, flags));
	kfd = ksys(LKL__NR_accept4, lsock_kfd(s), (long)addr, (long)len,
		   flags & ~SOCK_CLOEXEC, 0, 0);
	if (lsock_done(s, kfd) < 0)
		return -1;
	return fdmap_new((int)kfd, flags & SOCK_CLOEXEC);
}

EXPORT int accept(int fd, struct sockaddr *addr, socklen_t *len)
{
	ROUTE(fd, s, HOST_FN(accept)(fd, addr, len));
	fdmap_put(s);
	return accept4(fd, addr, len, 0);
}

EXPORT int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	ROUTE(fd, s, HOST_FN(connect)(fd, addr, len));
	return (int)lsock_done(s, ksys(LKL__NR_connect, lsock_kfd(s),
				       (long)addr, len, 0, 0, 0));
}

EXPORT int shutdown(int fd, int how)
{
	ROUTE(fd, s, HOST_FN(shutdown)(fd, how));
	return (int)lsock_done(s, ksys(LKL__NR_shutdown, lsock_kfd(s), how,
				       0, 0, 0, 0));
}

EXPORT int getsockname(int fd, struct sockaddr *addr, socklen_t *len)
{
	ROUTE(fd, s, HOST_FN(getsockname)(fd, addr, len));
	return (int)lsock_done_nosync(s, ksys(LKL__NR_getsockname,
					     lsock_kfd(s), (long)addr,
					     (long)len, 0, 0, 0));
}

EXPORT int getpeername(int fd, struct sockaddr *addr, socklen_t *len)
{
	ROUTE(fd, s, HOST_FN(getpeername)(fd, addr, len));
	return (int)lsock_done_nosync(s, ksys(LKL__NR_getpeername,
					     lsock_kfd(s), (long)addr,
					     (long)len, 0, 0, 0));
}

EXPORT int getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
	ROUTE(fd, s, HOST_FN(getsockopt)(fd, level, name, val, len));
	/* SO_ERROR clears the error: readiness may change. */
	return (int)lsock_done(s, ksys(LKL__NR_getsockopt, lsock_kfd(s), level,
				       name, (long)val, (long)len, 0));
}

EXPORT int setsockopt(int fd, int level, int name, const void *val,
		      socklen_t len)
{
	ROUTE(fd, s, HOST_FN(setsockopt)(fd, level, name, val, len));
	return (int)lsock_done(s, ksys(LKL__NR_setsockopt, lsock_kfd(s), level,
				       name, (long)val, len, 0));
}

/* ---- data ------------------------------------------------------------------ */

EXPORT ssize_t sendto(int fd, const void *buf, size_t len, int flags,
		      const struct sockaddr *addr, socklen_t alen)
{
	ROUTE(fd, s, HOST_FN(sendto)(fd, buf, len, flags, addr, alen));
	return lsock_done(s, ksend_result(ksys(LKL__NR_sendto, lsock_kfd(s),
					       (long)buf, len,
					       flags | MSG_NOSIGNAL,
					       (long)addr, alen), flags));
}

EXPORT ssize_t send(int fd, const void *buf, size_t len, int flags)
{
	ROUTE(fd, s, HOST_FN(send)(fd, buf, len, flags));
	fdmap_put(s);
	return sendto(fd, buf, len, flags, NULL, 0);
}

EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	ROUTE(fd, s, HOST_FN(sendmsg)(fd, msg, flags));
	return lsock_done(s, ksend_result(ksys(LKL__NR_sendmsg, lsock_kfd(s),
					       (long)msg, flags | MSG_NOSIGNAL,
					       0, 0, 0), flags));
}

EXPORT int sendmmsg(int fd, struct mmsghdr *vec, unsigned int n, int flags)
{
	ROUTE(fd, s, HOST_FN(sendmmsg)(fd, vec, n, flags));
	return (int)lsock_done(s, ksend_result(ksys(LKL__NR_sendmmsg,
						    lsock_kfd(s), (long)vec, n,
						    flags | MSG_NOSIGNAL, 0,
						    0), flags));
}

EXPORT ssize_t recvfrom(int fd, void *buf, size_t len, int flags,
			struct sockaddr *addr, socklen_t *alen)
{
	ROUTE(fd, s, HOST_FN(recvfrom)(fd, buf, len, flags, addr, alen));
	return lsock_done(s, ksys(LKL__NR_recvfrom, lsock_kfd(s), (long)buf,
				  len, flags, (long)addr, (long)alen));
}

EXPORT ssize_t recv(int fd, void *buf, size_t len, int flags)
{
	ROUTE(fd, s, HOST_FN(recv)(fd, buf, len, flags));
	fdmap_put(s);
	return recvfrom(fd, buf, len, flags, NULL, NULL);
}

EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	ROUTE(fd, s, HOST_FN(recvmsg)(fd, msg, flags));
	return lsock_done(s, ksys(LKL__NR_recvmsg, lsock_kfd(s), (long)msg,
				  flags, 0, 0, 0));
}

EXPORT int recvmmsg(int fd, struct mmsghdr *vec, unsigned int n, int flags,
		    struct timespec *timeout)
{
	ROUTE(fd, s, HOST_FN(recvmmsg)(fd, vec, n, flags, timeout));
	return (int)lsock_done(s, ksys(LKL__NR_recvmmsg, lsock_kfd(s),
				       (long)vec, n, flags, (long)timeout, 0));
}

/* _FORTIFY_SOURCE builds call these instead. */
EXPORT ssize_t __recv_chk(int fd, void *buf, size_t len, size_t buflen,
			  int flags)
{
	if (len > buflen)
		abort();
	return recv(fd, buf, len, flags);
}

EXPORT ssize_t __recvfrom_chk(int fd, void *buf, size_t len, size_t buflen,
			      int flags, struct sockaddr *addr,
			      socklen_t *alen)
{
	if (len > buflen)
		abort();
	return recvfrom(fd, buf, len, flags, addr, alen);
}
