/*
 * The interposed fd calls that are not socket calls: read/write and
 * their vector forms, close, dup*, fcntl, ioctl, sendfile, splice and
 * the positional forms (ESPIPE on a socket, as on Linux).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <linux/close_range.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <unistd.h>

#include <lkl/asm/unistd.h>

#include "preload.h"
#include "../common/optional_arg.h"

EXPORT ssize_t read(int fd, void *buf, size_t len)
{
	ROUTE(fd, s, HOST_FN(read)(fd, buf, len));
	return lsock_done(s, ksys(LKL__NR_recvfrom, lsock_kfd(s), (long)buf,
				  len, 0, 0, 0));
}

EXPORT ssize_t __read_chk(int fd, void *buf, size_t len, size_t buflen)
{
	if (len > buflen)
		abort();
	return read(fd, buf, len);
}

EXPORT ssize_t write(int fd, const void *buf, size_t len)
{
	ROUTE(fd, s, HOST_FN(write)(fd, buf, len));
	return lsock_done(s, ksend_result(ksys(LKL__NR_sendto, lsock_kfd(s),
					       (long)buf, len, MSG_NOSIGNAL,
					       0, 0), 0));
}

static long kmsg(struct lsock *s, int nr, const struct iovec *iov, int n,
		 int flags)
{
	struct msghdr msg;

	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = (struct iovec *)iov;
	msg.msg_iovlen = n;
	return ksys(nr, lsock_kfd(s), (long)&msg, flags, 0, 0, 0);
}

EXPORT ssize_t readv(int fd, const struct iovec *iov, int n)
{
	ROUTE(fd, s, HOST_FN(readv)(fd, iov, n));
	return lsock_done(s, kmsg(s, LKL__NR_recvmsg, iov, n, 0));
}

EXPORT ssize_t writev(int fd, const struct iovec *iov, int n)
{
	ROUTE(fd, s, HOST_FN(writev)(fd, iov, n));
	return lsock_done(s, ksend_result(kmsg(s, LKL__NR_sendmsg, iov, n,
					       MSG_NOSIGNAL), 0));
}

/* Positional I/O on a socket: ESPIPE, as Linux says. */
#define NO_SEEK(fd, host_call)						\
	do {								\
		ROUTE(fd, s, host_call);				\
		fdmap_put(s);						\
		errno = ESPIPE;						\
		return -1;						\
	} while (0)

EXPORT ssize_t pread(int fd, void *buf, size_t len, off_t off)
{
	NO_SEEK(fd, HOST_FN(pread)(fd, buf, len, off));
}

EXPORT ssize_t pread64(int fd, void *buf, size_t len, off_t off)
{
	NO_SEEK(fd, HOST_FN(pread64)(fd, buf, len, off));
}

EXPORT ssize_t pwrite(int fd, const void *buf, size_t len, off_t off)
{
	NO_SEEK(fd, HOST_FN(pwrite)(fd, buf, len, off));
}

EXPORT ssize_t pwrite64(int fd, const void *buf, size_t len, off_t off)
{
	NO_SEEK(fd, HOST_FN(pwrite64)(fd, buf, len, off));
}

EXPORT ssize_t preadv(int fd, const struct iovec *iov, int n, off_t off)
{
	NO_SEEK(fd, HOST_FN(preadv)(fd, iov, n, off));
}

EXPORT ssize_t pwritev(int fd, const struct iovec *iov, int n, off_t off)
{
	NO_SEEK(fd, HOST_FN(pwritev)(fd, iov, n, off));
}

EXPORT off_t lseek(int fd, off_t off, int whence)
{
	NO_SEEK(fd, HOST_FN(lseek)(fd, off, whence));
}

/* ---- lifetime: close and dup ------------------------------------------------ */

EXPORT int close(int fd)
{
	if (fd_is_internal(fd)) {
		/* Not the program's fd, as far as it can know. */
		errno = EBADF;
		return -1;
	}
	/* Unmapped before the number can be reused. */
	fdmap_forget(fd);
	return host_close(fd);
}

/* close_range without the internal fds: the gaps between them. */
EXPORT int close_range(unsigned int first, unsigned int last, int flags)
{
	unsigned int fd, from = first;
	unsigned int scan_end = last < (1u << 20) ? last : (1u << 20) - 1;
	int ret = 0;

	if (first > last) {
		errno = EINVAL;
		return -1;
	}
	for (fd = first; fd <= scan_end; fd++) {
		if (fd_is_internal((int)fd)) {
			if (fd > from &&
			    HOST_FN(close_range)(from, fd - 1, flags) < 0)
				ret = -1;
			from = fd + 1;
		} else if (!(flags & CLOSE_RANGE_CLOEXEC)) {
			fdmap_forget((int)fd);
		}
	}
	if (from <= last && HOST_FN(close_range)(from, last, flags) < 0)
		ret = -1;
	return ret;
}

EXPORT void closefrom(int lowfd)
{
	close_range(lowfd < 0 ? 0 : (unsigned int)lowfd, ~0u, 0);
}

EXPORT int dup(int fd)
{
	int nfd;

	ROUTE(fd, s, host_dup(fd));
	nfd = host_dup(fd);
	if (nfd >= 0)
		fdmap_alias(nfd, s);
	fdmap_put(s);
	return nfd;
}

static int dup_to(int fd, int newfd, int flags, int is_dup2)
{
	struct lsock *s;
	int kind, ret;

	if (fd == newfd) {
		if (is_dup2)
			return HOST_FN(dup2)(fd, newfd);
		errno = EINVAL;
		return -1;
	}
	/* A vfork child (e.g. setting up a spawned program's stdio). */
	if (fdmap_vfork_child())
		return host_dup3(fd, newfd, flags);
	kind = fdmap_lookup(fd, &s);
	if (kind < 0)
		return -1;
	if (fd_is_internal(newfd)) {
		if (s)
			fdmap_put(s);
		errno = EBUSY;
		return -1;
	}
	/* newfd is closed by the dup: forget it first if it is ours. */
	if (fcntl(fd, F_GETFD) < 0)
		goto put;	/* fd invalid: leave newfd alone (EBADF) */
	fdmap_forget(newfd);
	ret = host_dup3(fd, newfd, flags);
	if (ret >= 0 && s)
		fdmap_alias(ret, s);
	if (s)
		fdmap_put(s);
	return ret;
put:
	if (s)
		fdmap_put(s);
	errno = EBADF;
	return -1;
}

EXPORT int dup2(int fd, int newfd)
{
	return dup_to(fd, newfd, 0, 1);
}

EXPORT int dup3(int fd, int newfd, int flags)
{
	return dup_to(fd, newfd, flags, 0);
}

/* ---- fcntl and ioctl -------------------------------------------------------- */

static int do_fcntl(int fd, int cmd, long arg)
{
	int nfd;

	ROUTE(fd, s, host_fcntl(fd, cmd, arg));
	switch (cmd) {
	case F_GETFL:
	case F_SETFL:
	case F_GETOWN:
	case F_SETOWN:
		/* O_NONBLOCK lives on the kernel's file. */
		return (int)lsock_done(s, ksys(LKL__NR_fcntl, lsock_kfd(s), cmd,
					       arg, 0, 0, 0));
	case F_DUPFD:
	case F_DUPFD_CLOEXEC:
		nfd = host_fcntl(fd, cmd, arg);
		if (nfd >= 0)
			fdmap_alias(nfd, s);
		fdmap_put(s);
		return nfd;
	default:
		/* FD_CLOEXEC and the rest belong to the host fd. */
		fdmap_put(s);
		return host_fcntl(fd, cmd, arg);
	}
}

EXPORT int fcntl(int fd, int cmd, ...)
{
	return do_fcntl(fd, cmd, OPTIONAL_ARG(cmd, long, 1));
}

EXPORT int fcntl64(int fd, int cmd, ...)
{
	return do_fcntl(fd, cmd, OPTIONAL_ARG(cmd, long, 1));
}

EXPORT int ioctl(int fd, unsigned long req, ...)
{
	void *arg = OPTIONAL_ARG(req, void *, 1);

	ROUTE(fd, s, HOST_FN(ioctl)(fd, req, arg));
	/* FIONBIO, FIONREAD, SIOC*: the kernel's, same numbers. */
	return (int)lsock_done(s, ksys(LKL__NR_ioctl, lsock_kfd(s), (long)req,
				       (long)arg, 0, 0, 0));
}

/* ---- sendfile and splice ---------------------------------------------------- */

#define SENDFILE_CHUNK (64 * 1024)

/*
 * A host file to a kernel socket, by copying: up to count bytes from
 * in_fd (at *off, or its position) until the socket would block.
 */
static ssize_t sendfile_copy(struct lsock *s, int in_fd, off_t *off,
			     size_t count)
{
	char *buf = malloc(SENDFILE_CHUNK);
	size_t total = 0;
	ssize_t got;
	long sent = 0;

	if (!buf) {
		errno = ENOMEM;
		return -1;
	}
	while (total < count) {
		size_t want = count - total < SENDFILE_CHUNK ?
			      count - total : SENDFILE_CHUNK;

		got = off ? HOST_FN(pread)(in_fd, buf, want, *off) :
			    HOST_FN(read)(in_fd, buf, want);
		if (got <= 0) {
			if (got < 0 && total == 0)
				total = (size_t)-1;
			break;
		}
		sent = ksend_result(ksys(LKL__NR_sendto, lsock_kfd(s),
					 (long)buf, got, MSG_NOSIGNAL, 0, 0),
				    0);
		if (sent > 0) {
			total += sent;
			if (off)
				*off += sent;
		}
		/* Bytes read but not sent go back to the file. */
		if (!off && sent < got)
			HOST_FN(lseek)(in_fd, -(got - (sent > 0 ? sent : 0)),
				       SEEK_CUR);
		if (sent < got)
			break;
	}
	free(buf);
	if (total == 0 && sent < 0) {
		errno = (int)-sent;
		return -1;
	}
	return (ssize_t)total;
}

EXPORT ssize_t sendfile(int out_fd, int in_fd, off_t *off, size_t count)
{
	ssize_t ret;

	if (fdmap_is_lkl(in_fd)) {
		errno = preload_forked ? ENETDOWN : EINVAL;
		return -1;
	}
	{
		ROUTE(out_fd, s, HOST_FN(sendfile)(out_fd, in_fd, off, count));
		ret = sendfile_copy(s, in_fd, off, count);
		lsock_sync(s);
		fdmap_put(s);
		return ret;
	}
}

EXPORT ssize_t sendfile64(int out_fd, int in_fd, off_t *off, size_t count)
{
	return sendfile(out_fd, in_fd, off, count);
}

EXPORT ssize_t splice(int fd_in, loff_t *off_in, int fd_out, loff_t *off_out,
		      size_t len, unsigned int flags)
{
	/* No pipe of the host can reach a kernel socket without a copy. */
	if (fdmap_is_lkl(fd_in) || fdmap_is_lkl(fd_out)) {
		errno = EINVAL;
		return -1;
	}
	return HOST_FN(splice)(fd_in, off_in, fd_out, off_out, len, flags);
}

EXPORT off_t lseek64(int fd, off_t off, int whence)
{
	NO_SEEK(fd, HOST_FN(lseek64)(fd, off, whence));
}
