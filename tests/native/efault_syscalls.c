/*
 * Bad user pointers are -EFAULT, never a crash: every syscall family's
 * copies from and to the caller (copy_from_user/copy_to_user, get_user/
 * put_user, strncpy_from_user, strnlen_user, clear_user) meet a pointer
 * to nothing (address 0x1) and one to a PROT_NONE page.  A copy that
 * faults half-way returns what it did copy.  Good copies still work
 * afterwards, and a fault outside the kernel's user copies still ends
 * the process ("crash" argument), as without lkl.
 */
#define _GNU_SOURCE
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <lkl/asm-generic/errno.h>
#include <lkl/asm-generic/fcntl.h>
#include <lkl/asm-generic/ioctls.h>
#include <lkl/asm-generic/socket.h>
#include <lkl/linux/socket_abi.h>
#include <lkl/linux/sockios.h>

#include "net_util.h"
#include "test_util.h"

#define EXPECT_EFAULT(what, expr)					\
	do {								\
		long __r = (expr);					\
		CHECK(__r == -LKL_EFAULT, "%s -> %ld (%s), not EFAULT",	\
		      what, __r, lkl_strerror((int)__r));		\
		PASS(what);						\
	} while (0)

/* One page readable and writable, the next one PROT_NONE. */
static char *half_bad_buffer(long page)
{
	char *p = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	CHECK(p != MAP_FAILED, "mmap");
	CHECK(mprotect(p + page, page, PROT_NONE) == 0, "mprotect");
	memset(p, 'x', page);
	return p;
}

static void tcp_pair(long *client, long *server)
{
	long lfd = net_listen("127.0.0.1", 9100);

	*client = net_connect("127.0.0.1", 9100);
	*server = CHECK_OK(sys(LKL__NR_accept, lfd, 0, 0));
	sys(LKL__NR_close, lfd);
}

/* sendmsg or recvmsg (nr, called name) on fd: a bad msghdr, iov_base, msg_iov. */
static void msghdr_faults(long nr, const char *name, long fd, void *bad)
{
	struct lkl_iovec iov = { .iov_base = bad, .iov_len = 10 };
	struct lkl_user_msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	char what[64];

	snprintf(what, sizeof(what), "%s bad msghdr", name);
	EXPECT_EFAULT(what, sys(nr, fd, (long)bad, 0));
	snprintf(what, sizeof(what), "%s bad iov_base", name);
	EXPECT_EFAULT(what, sys(nr, fd, (long)&msg, 0));
	msg.msg_iov = bad;
	snprintf(what, sizeof(what), "%s bad msg_iov", name);
	EXPECT_EFAULT(what, sys(nr, fd, (long)&msg, 0));
}

int main(int argc, char **argv)
{
	void *bad = (void *)1;
	long page = sysconf(_SC_PAGESIZE);
	char *half = half_bad_buffer(page);
	char *none = half + page;
	char buf[256];
	int pipefd[2], one = 1, len;
	long c, s, n;

	test_boot("");
	test_lo_up();

	if (argc > 1 && !strcmp(argv[1], "crash")) {
		/* Not a user copy: the host's own fault, the usual death. */
		volatile int *null = NULL;

		printf("crashing\n");
		fflush(stdout);
		return *null;
	}

	/* read/write: pipes (copy_from_user, copy_to_user). */
	CHECK_OK(sys(LKL__NR_pipe2, (long)pipefd, 0));
	EXPECT_EFAULT("write bad buffer", sys(LKL__NR_write, pipefd[1],
					      (long)bad, 10));
	EXPECT_EFAULT("write PROT_NONE buffer",
		      sys(LKL__NR_write, pipefd[1], (long)none, 10));
	n = sys(LKL__NR_write, pipefd[1], (long)half, 2 * page);
	CHECK(n == page, "a write that faults half-way: %ld, not %ld", n,
	      page);
	PASS("write half-bad buffer returns the good half");
	EXPECT_EFAULT("read bad buffer", sys(LKL__NR_read, pipefd[0],
					     (long)bad, 10));
	n = CHECK_OK(sys(LKL__NR_read, pipefd[0], (long)buf, 10));
	CHECK(n == 10 && buf[0] == 'x', "the data is still there: %ld", n);
	PASS("read after a faulted read");
	EXPECT_EFAULT("pipe2 bad fds", sys(LKL__NR_pipe2, (long)bad, 0));

	/* Sockets: send/recv/sendmsg/recvmsg. */
	tcp_pair(&c, &s);
	EXPECT_EFAULT("send bad buffer", sys(LKL__NR_sendto, c, (long)bad,
					     100, 0, 0, 0));
	EXPECT_EFAULT("sendto bad address",
		      sys(LKL__NR_sendto, c, (long)buf, 1, 0, (long)bad, 16));
	msghdr_faults(LKL__NR_sendmsg, "sendmsg", c, bad);
	CHECK(CHECK_OK(sys(LKL__NR_sendto, c, (long)"hello", 5, 0, 0, 0)) == 5,
	      "good send");
	EXPECT_EFAULT("recv bad buffer", sys(LKL__NR_recvfrom, s, (long)bad,
					     100, 0, 0, 0));
	msghdr_faults(LKL__NR_recvmsg, "recvmsg", s, bad);
	n = CHECK_OK(sys(LKL__NR_recvfrom, s, (long)buf, sizeof(buf), 0, 0, 0));
	CHECK(n == 5 && !memcmp(buf, "hello", 5), "good recv after faults: %ld",
	      n);
	PASS("recv after faulted receives");

	/* setsockopt/getsockopt (copy_from_user, get_user, put_user). */
	EXPECT_EFAULT("setsockopt bad optval",
		      sys(LKL__NR_setsockopt, s, LKL_SOL_SOCKET, LKL_SO_RCVBUF,
			  (long)bad, 4));
	len = sizeof(one);
	EXPECT_EFAULT("getsockopt bad optval",
		      sys(LKL__NR_getsockopt, s, LKL_SOL_SOCKET, LKL_SO_RCVBUF,
			  (long)bad, (long)&len));
	EXPECT_EFAULT("getsockopt bad optlen",
		      sys(LKL__NR_getsockopt, s, LKL_SOL_SOCKET, LKL_SO_RCVBUF,
			  (long)&one, (long)bad));
	EXPECT_EFAULT("getsockname bad addrlen",
		      sys(LKL__NR_getsockname, s, (long)buf, (long)bad));

	/* ioctl: put_user of an int, copy_from_user of an ifreq. */
	EXPECT_EFAULT("ioctl FIONREAD bad pointer",
		      sys(LKL__NR_ioctl, s, LKL_FIONREAD, (long)bad));
	EXPECT_EFAULT("ioctl SIOCGIFFLAGS bad ifreq",
		      sys(LKL__NR_ioctl, s, LKL_SIOCGIFFLAGS, (long)bad));

	/* Strings: strncpy_from_user (paths), strnlen_user (mount's source). */
	EXPECT_EFAULT("openat bad path",
		      sys(LKL__NR_openat, LKL_AT_FDCWD, (long)bad, LKL_O_RDONLY));
	EXPECT_EFAULT("openat path on a PROT_NONE page",
		      sys(LKL__NR_openat, LKL_AT_FDCWD, (long)none,
			  LKL_O_RDONLY));
	EXPECT_EFAULT("mount bad source (strnlen_user)",
		      sys(LKL__NR_mount, (long)bad, (long)"/", (long)"ramfs",
			  0, 0));

	/* clear_user: reading /dev/zero's zeroes into nothing. */
	n = sys(LKL__NR_mknodat, LKL_AT_FDCWD, (long)"/zero",
		0020000 | 0666 /* S_IFCHR */, (1 << 8) | 5);
	CHECK(n == 0 || n == -LKL_EEXIST, "mknod /zero: %ld", n);
	{
		long z = CHECK_OK(sys(LKL__NR_openat, LKL_AT_FDCWD,
				      (long)"/zero", LKL_O_RDONLY));

		EXPECT_EFAULT("read /dev/zero into a bad buffer (clear_user)",
			      sys(LKL__NR_read, z, (long)bad, 10));
		n = sys(LKL__NR_read, z, (long)half, 2 * page);
		CHECK(n == page, "zeroes up to the bad page: %ld", n);
		CHECK(half[0] == 0 && half[page - 1] == 0, "zeroed");
		PASS("read /dev/zero half-bad buffer returns the good half");
		sys(LKL__NR_close, z);
	}

	sys(LKL__NR_close, c);
	sys(LKL__NR_close, s);
	lkl_sys_halt();
	PASS("halt");
	return 0;
}
