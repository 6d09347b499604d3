/*
 * Boot, the everyday syscalls on tmpfs and procfs, bad input, halt.
 * Prints "ok <check>" for each check; exits non-zero on the first failure.
 */
#define _GNU_SOURCE
#include <string.h>

#include <lkl/linux/utsname.h>
#include <lkl/linux/fcntl.h>
#include <lkl/asm/stat.h>
#include <lkl/linux/fs.h>
#include <lkl/linux/time_types.h>
#include <lkl/linux/eventpoll.h>
#include <lkl/linux/errno.h>
#include <lkl/linux/socket_abi.h>
#include <lkl/asm-generic/socket.h>

#include "test_util.h"

static void check_files(void)
{
	struct lkl_stat st;
	char buf[64];
	long fd, old;

	old = sys(LKL__NR_umask, 022);
	CHECK(old >= 0, "umask");
	CHECK(sys(LKL__NR_umask, 027) == 022, "umask reports the previous mask");
	CHECK_OK(sys(LKL__NR_mkdirat, LKL_AT_FDCWD, (long)"/tmp/dir", 0777));
	CHECK(sys(LKL__NR_mkdirat, LKL_AT_FDCWD, (long)"/tmp/dir", 0777) == -LKL_EEXIST,
	      "mkdir twice is EEXIST");
	fd = CHECK_OK(sys(LKL__NR_openat, LKL_AT_FDCWD, (long)"/tmp/dir/file",
			  LKL_O_CREAT | LKL_O_RDWR, 0666));
	CHECK(sys(LKL__NR_write, fd, (long)"hello, kernel", 13) == 13, "write");
	CHECK(sys(LKL__NR_lseek, fd, 7, LKL_SEEK_SET) == 7, "lseek");
	memset(buf, 0, sizeof(buf));
	CHECK(sys(LKL__NR_read, fd, (long)buf, sizeof(buf)) == 6, "read");
	CHECK(!strcmp(buf, "kernel"), "read back '%s'", buf);
	CHECK_OK(sys(LKL__NR_fstat, fd, (long)&st));
	CHECK(st.st_size == 13, "fstat size %lu", (unsigned long)st.st_size);
	/* umask 027 applied to 0666 */
	CHECK((st.st_mode & 0777) == 0640, "mode %o", st.st_mode & 0777);
	CHECK_OK(sys(LKL__NR_close, fd));
	PASS("files");
}

static void check_mounts(void)
{
	char buf[4096];

	test_read_kernel_file("/proc/mounts", buf, sizeof(buf));
	CHECK(strstr(buf, "proc /proc proc") != NULL, "procfs at /proc: %s", buf);
	CHECK(strstr(buf, "sysfs /sys sysfs") != NULL, "sysfs at /sys: %s", buf);
	CHECK(strstr(buf, "tmpfs /tmp tmpfs") != NULL, "tmpfs at /tmp: %s", buf);
	PASS("mounts");
}

static void check_proc(void)
{
	char buf[4096];

	test_read_kernel_file("/proc/version", buf, sizeof(buf));
	CHECK(!strncmp(buf, "Linux version 6.12.", 19), "/proc/version: %s", buf);

	test_read_kernel_file("/proc/meminfo", buf, sizeof(buf));
	CHECK(strstr(buf, "MemTotal:") != NULL, "/proc/meminfo: %s", buf);
	{
		unsigned long kb = strtoul(strstr(buf, "MemTotal:") + 9, NULL, 10);

		/* mem=64M, less what the kernel reserved for itself */
		CHECK(kb > 48 * 1024 && kb <= 64 * 1024, "MemTotal %lu kB", kb);
	}
	PASS("procfs");
}

static void check_time(void)
{
	struct lkl__kernel_timespec ts = { .tv_sec = 0, .tv_nsec = 20 * 1000000 };
	uint64_t t0 = test_now_ns(), dt;

	CHECK_OK(sys(LKL__NR_nanosleep, (long)&ts, 0));
	dt = test_now_ns() - t0;
	CHECK(dt >= 20 * 1000000ULL && dt < 2000 * 1000000ULL,
	      "nanosleep(20ms) took %lu ns", (unsigned long)dt);
	PASS("nanosleep");
}

/* Timer-wheel timers (schedule_timeout), which TCP's timers use too. */
static void check_timer_wheel(void)
{
	struct lkl__kernel_sock_timeval tv = { .tv_usec = 200000 };
	uint64_t t0, dt;
	char buf[8];
	long fd, r;

	fd = CHECK_OK(sys(LKL__NR_socket, LKL_AF_INET, LKL_SOCK_DGRAM, 0));
	CHECK_OK(sys(LKL__NR_setsockopt, fd, LKL_SOL_SOCKET, LKL_SO_RCVTIMEO_NEW,
		     (long)&tv, sizeof(tv)));
	t0 = test_now_ns();
	r = sys(LKL__NR_recvfrom, fd, (long)buf, sizeof(buf), 0, 0, 0);
	dt = test_now_ns() - t0;
	CHECK(r == -LKL_EAGAIN, "recv with SO_RCVTIMEO returned %ld", r);
	CHECK(dt >= 190 * 1000000ULL && dt < 2000 * 1000000ULL,
	      "SO_RCVTIMEO of 200 ms took %lu ns", (unsigned long)dt);
	sys(LKL__NR_close, fd);
	PASS("timer wheel");
}

static void check_pipe_epoll(void)
{
	struct lkl_epoll_event ev = { .events = LKL_EPOLLIN }, out[4];
	int fds[2];
	char c = 0;
	long ep;

	CHECK_OK(sys(LKL__NR_pipe2, (long)fds, LKL_O_NONBLOCK));
	CHECK(sys(LKL__NR_read, fds[0], (long)&c, 1) == -LKL_EAGAIN,
	      "empty non-blocking pipe is EAGAIN");
	ep = CHECK_OK(sys(LKL__NR_epoll_create1, 0));
	ev.data = 42;
	CHECK_OK(sys(LKL__NR_epoll_ctl, ep, LKL_EPOLL_CTL_ADD, fds[0], (long)&ev));
	CHECK(sys(LKL__NR_epoll_pwait, ep, (long)out, 4, 0, 0, 8) == 0,
	      "nothing ready yet");
	CHECK(sys(LKL__NR_write, fds[1], (long)"x", 1) == 1, "pipe write");
	CHECK(sys(LKL__NR_epoll_pwait, ep, (long)out, 4, 1000, 0, 8) == 1,
	      "epoll sees the pipe");
	CHECK(out[0].data == 42 && (out[0].events & LKL_EPOLLIN), "epoll event");
	CHECK(sys(LKL__NR_read, fds[0], (long)&c, 1) == 1 && c == 'x', "pipe read");
	sys(LKL__NR_close, ep);
	sys(LKL__NR_close, fds[0]);
	sys(LKL__NR_close, fds[1]);
	PASS("pipe2+epoll");
}

static void check_bad_input(void)
{
	CHECK(lkl_syscall(100000, NULL) == -LKL_ENOSYS, "huge syscall number");
	CHECK(lkl_syscall(-1, NULL) == -LKL_ENOSYS, "negative syscall number");
	CHECK(sys(LKL__NR_close, 12345) == -LKL_EBADF, "bad fd is EBADF");
	CHECK(sys(LKL__NR_read, 999, 0, 10) == -LKL_EBADF, "read on bad fd");
	/* Calls that would end the init process are refused. */
	CHECK(sys(LKL__NR_exit_group, 0) == -LKL_ENOSYS, "exit_group refused");
	CHECK(sys(LKL__NR_reboot, 0, 0, 0, 0) == -LKL_ENOSYS, "reboot refused");
	CHECK(sys(LKL__NR_clone, 0, 0, 0, 0, 0) == -LKL_ENOSYS, "clone refused");
	PASS("bad input");
}

int main(void)
{
	struct lkl_new_utsname uts;
	int threads_before = test_host_threads();

	CHECK(lkl_syscall(LKL__NR_getpid, NULL) == -LKL_ENODEV,
	      "syscall before boot");
	CHECK(lkl_sys_halt() == -LKL_ENODEV, "halt before boot");

	test_boot(NULL);
	CHECK(strstr(test_console, "Linux version 6.12") != NULL,
	      "console banner missing: %.200s", test_console);
	PASS("banner");
	CHECK(lkl_is_running(), "running after boot");
	CHECK(lkl_start_kernel(&lkl_host_ops, "") == -LKL_EBUSY,
	      "second boot while running");

	CHECK_OK(sys(LKL__NR_uname, (long)&uts));
	CHECK(!strcmp(uts.sysname, "Linux"), "sysname %s", uts.sysname);
	CHECK(!strncmp(uts.release, "6.12.", 5), "release %s", uts.release);
	PASS("uname");
	CHECK(sys(LKL__NR_getpid) == 1, "getpid is the init process");
	PASS("getpid");

	check_mounts();
	check_files();
	check_proc();
	check_time();
	check_timer_wheel();
	check_pipe_epoll();
	check_bad_input();

	CHECK(lkl_sys_halt() == 0, "halt");
	CHECK(!lkl_is_running(), "not running after halt");
	CHECK(test_host_threads() == threads_before,
	      "host threads after halt: %d, before boot: %d",
	      test_host_threads(), threads_before);
	PASS("halt joins every kernel thread");

	CHECK(lkl_sys_halt() == -LKL_ENODEV, "second halt");
	CHECK(sys(LKL__NR_getpid) == -LKL_ENODEV, "syscall after halt");
	CHECK(lkl_start_kernel(&lkl_host_ops, "") == -LKL_EALREADY,
	      "boot after halt in the same process");
	PASS("after halt");
	return 0;
}
