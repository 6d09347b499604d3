/*
 * packetdrill's shared-object interface (packetdrill.h) on the lkl
 * kernel: every socket call of a script goes to lkl's syscalls, every
 * packet to and from the kernel crosses one in-memory NIC (backend.c).
 *
 *   packetdrill --so_filename=liblkl-packetdrill.so \
 *       --so_flags="ipv4 local=192.168.0.1 prefix=16 remote=192.0.2.1" ...
 *
 * with the same file in LD_PRELOAD, so that what packetdrill does on the
 * host directly (close, getsockopt for %{ }% checks, shell commands)
 * reaches lkl too (hostcalls.c).  so_flags, separated by spaces or
 * commas: "ipv4"/"ipv6", local=, prefix=, remote=, mtu= (1500),
 * mode=shadow|direct (shadow: in direct mode three slow-start scripts
 * flake, see bench/results/packetdrill.md), sniff_timeout_ms= (10000: how long a
 * script may wait for a packet that never comes before it fails).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <lkl/lkl.h>
#include <lkl/netdev.h>
#include <lkl/asm/unistd.h>

#include "packetdrill.h"
#include "pd.h"
#include "../common/optional_arg.h"

/* An injected packet counts as taken once the driver has counted it. */
#define INJECT_TIMEOUT_MS	1000

static struct pd_config config = {
	.prefix = -1,
	.mtu = 1500,
	.direct = 0,
	.sniff_timeout_ms = 10000,
};
static struct lkl_netdev *nic;
static int running;
static long long rx_expected;

int pd_ready(void)
{
	return __atomic_load_n(&running, __ATOMIC_ACQUIRE);
}

static void __attribute__((noreturn)) fail(const char *what, long err)
{
	if (err)
		fprintf(stderr, "lkl-packetdrill: %s: %s\n", what,
			lkl_strerror(err));
	else
		fprintf(stderr, "lkl-packetdrill: %s\n", what);
	exit(EXIT_FAILURE);
}

/* libc's convention: -1 with errno, or the result. */
static long ret(long r)
{
	if (r < 0) {
		errno = -r;
		return -1;
	}
	return r;
}

/* A packetdrill fd to lkl's; -1 for one that is not lkl's. */
static long lfd(int fd)
{
	return fd >= PD_FD_BASE ? fd - PD_FD_BASE : -1;
}

static long new_fd(long r)
{
	return r < 0 ? ret(r) : r + PD_FD_BASE;
}

#define FD_OR_EBADF(fd)						\
	do {							\
		if (lfd(fd) < 0) {				\
			errno = EBADF;				\
			return -1;				\
		}						\
	} while (0)

static int pd_socket(void *u, int domain, int type, int protocol)
{
	return new_fd(pd_sys3(LKL__NR_socket, domain, type, protocol));
}

static int pd_bind(void *u, int fd, const struct sockaddr *a, socklen_t len)
{
	FD_OR_EBADF(fd);
	return ret(pd_sys3(LKL__NR_bind, lfd(fd), a, len));
}

static int pd_listen(void *u, int fd, int backlog)
{
	FD_OR_EBADF(fd);
	return ret(pd_sys2(LKL__NR_listen, lfd(fd), backlog));
}

static int pd_accept(void *u, int fd, struct sockaddr *a, socklen_t *len)
{
	FD_OR_EBADF(fd);
	return new_fd(pd_sys3(LKL__NR_accept, lfd(fd), a, len));
}

static int pd_connect(void *u, int fd, const struct sockaddr *a,
		      socklen_t len)
{
	FD_OR_EBADF(fd);
	return ret(pd_sys3(LKL__NR_connect, lfd(fd), a, len));
}

static ssize_t pd_read(void *u, int fd, void *buf, size_t count)
{
	FD_OR_EBADF(fd);
	return ret(pd_sys3(LKL__NR_read, lfd(fd), buf, count));
}

static ssize_t pd_readv(void *u, int fd, const struct iovec *iov, int cnt)
{
	FD_OR_EBADF(fd);
	return ret(pd_sys3(LKL__NR_readv, lfd(fd), iov, cnt));
}

static ssize_t pd_recvfrom(void *u, int fd, void *buf, size_t len, int flags,
			   struct sockaddr *a, socklen_t *alen)
{
	FD_OR_EBADF(fd);
	return ret(pd_sys(LKL__NR_recvfrom, lfd(fd), (long)buf, len, flags,
			  (long)a, (long)alen));
}

static ssize_t pd_recv(void *u, int fd, void *buf, size_t len, int flags)
{
	return pd_recvfrom(u, fd, buf, len, flags, NULL, NULL);
}

static ssize_t pd_recvmsg(void *u, int fd, struct msghdr *msg, int flags)
{
	FD_OR_EBADF(fd);
	return ret(pd_sys3(LKL__NR_recvmsg, lfd(fd), msg, flags));
}

static ssize_t pd_write(void *u, int fd, const void *buf, size_t count)
{
	FD_OR_EBADF(fd);
	return ret(pd_sys3(LKL__NR_write, lfd(fd), buf, count));
}

static ssize_t pd_writev(void *u, int fd, const struct iovec *iov, int cnt)
{
	FD_OR_EBADF(fd);
	return ret(pd_sys3(LKL__NR_writev, lfd(fd), iov, cnt));
}

static ssize_t pd_sendto(void *u, int fd, const void *buf, size_t len,
			 int flags, const struct sockaddr *a, socklen_t alen)
{
	FD_OR_EBADF(fd);
	return ret(pd_sys(LKL__NR_sendto, lfd(fd), (long)buf, len, flags,
			  (long)a, alen));
}

static ssize_t pd_send(void *u, int fd, const void *buf, size_t len,
		       int flags)
{
	return pd_sendto(u, fd, buf, len, flags, NULL, 0);
}

static ssize_t pd_sendmsg(void *u, int fd, const struct msghdr *msg,
			  int flags)
{
	FD_OR_EBADF(fd);
	return ret(pd_sys3(LKL__NR_sendmsg, lfd(fd), msg, flags));
}

static int pd_fcntl(void *u, int fd, int cmd, ...)
{
	long arg = OPTIONAL_ARG(cmd, long, 1);

	FD_OR_EBADF(fd);
	return ret(pd_sys3(LKL__NR_fcntl, lfd(fd), cmd, arg));
}

static int pd_ioctl(void *u, int fd, unsigned long request, ...)
{
	long arg = OPTIONAL_ARG(request, long, 1);

	FD_OR_EBADF(fd);
	return ret(pd_sys3(LKL__NR_ioctl, lfd(fd), request, arg));
}

static int pd_close(void *u, int fd)
{
	FD_OR_EBADF(fd);
	return ret(pd_sys1(LKL__NR_close, lfd(fd)));
}

static int pd_shutdown(void *u, int fd, int how)
{
	FD_OR_EBADF(fd);
	return ret(pd_sys2(LKL__NR_shutdown, lfd(fd), how));
}

static int pd_getsockopt(void *u, int fd, int level, int name, void *val,
			 socklen_t *len)
{
	FD_OR_EBADF(fd);
	return ret(pd_sys(LKL__NR_getsockopt, lfd(fd), level, name,
			  (long)val, (long)len, 0));
}

static int pd_setsockopt(void *u, int fd, int level, int name,
			 const void *val, socklen_t len)
{
	FD_OR_EBADF(fd);
	return ret(pd_sys(LKL__NR_setsockopt, lfd(fd), level, name,
			  (long)val, len, 0));
}

static int pd_poll(void *u, struct pollfd *fds, nfds_t n, int timeout)
{
	struct pollfd *k = calloc(n ? n : 1, sizeof(*k));
	struct timespec ts = { timeout / 1000, (timeout % 1000) * 1000000L };
	long r;
	nfds_t i;

	if (!k) {
		errno = ENOMEM;
		return -1;
	}
	for (i = 0; i < n; i++) {
		k[i] = fds[i];
		/* Not lkl's: an fd lkl never has, so POLLNVAL as for a bad fd. */
		k[i].fd = fds[i].fd < 0 ? fds[i].fd :
			  lfd(fds[i].fd) < 0 ? 0x3fffffff : lfd(fds[i].fd);
	}
	r = pd_sys(LKL__NR_ppoll, (long)k, n, timeout < 0 ? 0 : (long)&ts,
		   0, 8, 0);
	for (i = 0; r >= 0 && i < n; i++)
		fds[i].revents = k[i].revents;
	free(k);
	return ret(r);
}

static int pd_epoll_create(void *u, int size)
{
	if (size <= 0) {
		errno = EINVAL;
		return -1;
	}
	return new_fd(pd_sys1(LKL__NR_epoll_create1, 0));
}

static int pd_epoll_ctl(void *u, int epfd, int op, int fd,
			struct epoll_event *ev)
{
	FD_OR_EBADF(epfd);
	FD_OR_EBADF(fd);
	return ret(pd_sys(LKL__NR_epoll_ctl, lfd(epfd), op, lfd(fd),
			  (long)ev, 0, 0));
}

static int pd_epoll_wait(void *u, int epfd, struct epoll_event *ev, int max,
			 int timeout)
{
	FD_OR_EBADF(epfd);
	return ret(pd_sys(LKL__NR_epoll_pwait, lfd(epfd), (long)ev, max,
			  timeout, 0, 8));
}

static int pd_pipe(void *u, int fds[2])
{
	int k[2];
	long r = pd_sys2(LKL__NR_pipe2, k, 0);

	if (r < 0)
		return ret(r);
	fds[0] = k[0] + PD_FD_BASE;
	fds[1] = k[1] + PD_FD_BASE;
	return 0;
}

static int pd_splice(void *u, int in, loff_t *off_in, int out,
		     loff_t *off_out, size_t len, unsigned int flags)
{
	FD_OR_EBADF(in);
	FD_OR_EBADF(out);
	return ret(pd_sys(LKL__NR_splice, lfd(in), (long)off_in, lfd(out),
			  (long)off_out, len, flags));
}

static int pd_usleep(void *u, useconds_t usec)
{
	return usleep(usec);
}

static int pd_gettimeofday(void *u, struct timeval *tv, struct timezone *tz)
{
	return gettimeofday(tv, tz);
}

/*
 * packetdrill -> kernel, synchronously as into tun: back only once the
 * driver has taken the packet into the stack (its receive counter,
 * read under the CPU lock, moved past it).
 */
static int pd_netdev_send(void *u, const void *buf, size_t count)
{
	struct timespec t0, t;
	long long seen;
	int err = pd_backend_inject(buf, count);

	if (err) {
		errno = -err;
		return -1;
	}
	rx_expected++;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		seen = pd_nic_rx_count();
		if (seen >= rx_expected)
			return 0;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((t.tv_sec - t0.tv_sec) * 1000 +
		    (t.tv_nsec - t0.tv_nsec) / 1000000 > INJECT_TIMEOUT_MS)
			break;
		sched_yield();
	}
	/* Lost on the way (the device counted it): carry on in step. */
	fprintf(stderr, "lkl-packetdrill: an injected packet was not taken "
		"in %d ms\n", INJECT_TIMEOUT_MS);
	rx_expected = seen;
	return 0;
}

static int pd_netdev_receive(void *u, void *buf, size_t *count,
			     long long *usecs)
{
	return pd_backend_sniff(buf, count, usecs, config.sniff_timeout_ms);
}

static void pd_free(void *u)
{
	__atomic_store_n(&running, 0, __ATOMIC_RELEASE);
	lkl_sys_halt();
	lkl_netdev_free(nic);
}

static void parse_flags(const char *flags)
{
	char *copy = strdup(flags ? flags : ""), *tok, *save = NULL;

	for (tok = strtok_r(copy, " ,", &save); tok;
	     tok = strtok_r(NULL, " ,", &save)) {
		char *val = strchr(tok, '=');

		if (val)
			*val++ = 0;
		if (!strcmp(tok, "ipv4"))
			config.ipv6 = 0;
		else if (!strcmp(tok, "ipv6"))
			config.ipv6 = 1;
		else if (val && !strcmp(tok, "local"))
			snprintf(config.local, sizeof(config.local), "%s", val);
		else if (val && !strcmp(tok, "remote"))
			snprintf(config.remote, sizeof(config.remote), "%s",
				 val);
		else if (val && !strcmp(tok, "prefix"))
			config.prefix = atoi(val);
		else if (val && !strcmp(tok, "mtu"))
			config.mtu = atoi(val);
		else if (val && !strcmp(tok, "sniff_timeout_ms"))
			config.sniff_timeout_ms = atoi(val);
		else if (val && !strcmp(tok, "mode") &&
			 (!strcmp(val, "direct") || !strcmp(val, "shadow")))
			config.direct = !strcmp(val, "direct");
		else
			fail("unknown so_flags word", 0);
	}
	free(copy);
	if (!config.local[0] || !config.remote[0])
		fail("so_flags need local= and remote=", 0);
	if (config.prefix < 0)
		config.prefix = config.ipv6 ? 48 : 16;
}

/* The host calls only reach lkl if this file is also in LD_PRELOAD. */
static void check_preloaded(void)
{
	extern int system(const char *);
	/* The program's own scope: where its calls to system() bind. */
	void *program = dlopen(NULL, RTLD_NOW);

	if (!program || dlsym(program, "system") != (void *)system)
		fail("this adapter must also be in LD_PRELOAD (else the "
		     "scripts' shell commands would change the host)", 0);
}

static void boot(void)
{
	struct lkl_netdev_config ncfg = {
		.offload = LKL_NETDEV_LARGE_SEGMENTS,
		.mtu = config.mtu,
		.has_mac = 1,
		.mac = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x02 },
	};
	char cmdline[128];
	long err;

	snprintf(cmdline, sizeof(cmdline), "mem=128M quiet loglevel=1 "
		 "virtio_net.napi_tx=1 lkl.syscall_mode=%s", config.direct ? "direct" : "shadow");
	err = lkl_start_kernel(&lkl_host_ops, cmdline);
	if (err)
		fail("boot", err);
	err = lkl_netdev_create(pd_backend_create(), &ncfg, &nic);
	if (err)
		fail("NIC", err);
	pd_backend_set_mac(ncfg.mac);
	err = lkl_netdev_attach(nic);
	if (err)
		fail("NIC attach", err);
	err = lkl_netdev_ifindex(nic);
	if (err < 0)
		fail("NIC ifindex", err);
	if (pd_netconf(&config, err))
		exit(EXIT_FAILURE);
	err = pd_apply_defaults();
	if (err)
		fail("defaults", err);
	rx_expected = pd_nic_rx_count();
	__atomic_store_n(&running, 1, __ATOMIC_RELEASE);
}

void packetdrill_interface_init(const char *flags,
				struct packetdrill_interface *ifc)
{
	parse_flags(flags);
	check_preloaded();
	boot();

	memset(ifc, 0, sizeof(*ifc));
	ifc->free = pd_free;
	ifc->socket = pd_socket;
	ifc->bind = pd_bind;
	ifc->listen = pd_listen;
	ifc->accept = pd_accept;
	ifc->connect = pd_connect;
	ifc->read = pd_read;
	ifc->readv = pd_readv;
	ifc->recv = pd_recv;
	ifc->recvfrom = pd_recvfrom;
	ifc->recvmsg = pd_recvmsg;
	ifc->write = pd_write;
	ifc->writev = pd_writev;
	ifc->send = pd_send;
	ifc->sendto = pd_sendto;
	ifc->sendmsg = pd_sendmsg;
	ifc->fcntl = pd_fcntl;
	ifc->ioctl = pd_ioctl;
	ifc->close = pd_close;
	ifc->shutdown = pd_shutdown;
	ifc->getsockopt = pd_getsockopt;
	ifc->setsockopt = pd_setsockopt;
	ifc->poll = pd_poll;
	ifc->netdev_send = pd_netdev_send;
	ifc->netdev_receive = pd_netdev_receive;
	ifc->usleep = pd_usleep;
	ifc->gettimeofday = pd_gettimeofday;
	ifc->epoll_create = pd_epoll_create;
	ifc->epoll_ctl = pd_epoll_ctl;
	ifc->epoll_wait = pd_epoll_wait;
	ifc->pipe = pd_pipe;
	ifc->splice = pd_splice;
}
