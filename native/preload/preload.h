/*
 * lkl preload library: internal interfaces between its files.
 *
 * The library is LD_PRELOADed into an unmodified program.  Its
 * constructor (setup.c) boots the kernel from the configuration
 * (config.c), attaches the NIC and configures it (netconf.c).  The
 * program's AF_INET/AF_INET6/AF_NETLINK/AF_PACKET sockets are kernel
 * sockets, each shown to the program as one end of a host socketpair
 * whose readiness mirrors the kernel socket's (fdmap.c), so that the
 * program's own select/poll/epoll work on the host, unmodified.  The
 * interposed libc calls are in sockets.c, fileio.c and resolve.c.
 */
#ifndef LKL_PRELOAD_H
#define LKL_PRELOAD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#define EXPORT __attribute__((visibility("default")))

/* ---- the host's own libc functions (real.c) ------------------------------ */

/* The next definition of name after ours (libc's), found once. */
void *preload_real(const char *name, void **slot);
/* HOST_FN(bind)(fd, addr, len): libc's bind. */
#define HOST_FN(name)							\
	({								\
		static void *slot_;					\
		(__typeof__(&name))preload_real(#name, &slot_);		\
	})

int host_socket(int domain, int type, int protocol);
int host_socketpair(int domain, int type, int protocol, int sv[2]);
int host_close(int fd);
ssize_t host_read(int fd, void *buf, size_t len);
ssize_t host_write(int fd, const void *buf, size_t len);
ssize_t host_recv(int fd, void *buf, size_t len, int flags);
ssize_t host_send(int fd, const void *buf, size_t len, int flags);
int host_setsockopt(int fd, int level, int name, const void *val,
		    socklen_t len);
int host_fcntl(int fd, int cmd, long arg);
int host_dup(int fd);
int host_dup3(int fd, int newfd, int flags);

/* The library's own host fds: the program cannot close or replace them. */
void fd_set_internal(int fd, int on);
int fd_is_internal(int fd);

/* ---- kernel syscalls ------------------------------------------------------- */

/* A kernel syscall with up to six arguments; negative errno on failure. */
long ksys(long nr, long a, long b, long c, long d, long e, long f);
#define KSYS(nr, ...) ksys_n(nr, (long[6]){ __VA_ARGS__ })
long ksys_n(long nr, long *params);

/* errno from a negative kernel result; returns -1 (or the result). */
long kret(long ret);

/* ---- configuration (config.c) --------------------------------------------- */

#define PRELOAD_MAX_ADDRS 8
#define PRELOAD_MAX_NS 3

struct preload_config {
	char memory[32];		/* "128M" */
	char syscall_mode[16];		/* "", "shadow", "direct" */
	char nic_type[8];		/* "", "tap", "raw" */
	char nic_name[32];
	int naddrs;
	char addrs[PRELOAD_MAX_ADDRS][64];	/* "10.0.0.2/24" */
	char gateway4[64], gateway6[64];
	uint64_t offload;
	int has_offload;
	int mtu;
	int has_mac;
	unsigned char mac[6];
	char sysctl[1024];		/* "k=v;k=v" */
	int nns;
	char nameservers[PRELOAD_MAX_NS][64];
	char cmdline[512];
	char control[72];		/* serve the kernel as this name */
	int debug;
	int keep_preload;
};

/*
 * Fill cfg from the environment and LKL_CONFIG (JSON, overrides it).
 * Returns 0, or -1 with a message in err.
 */
int preload_config_read(struct preload_config *cfg, char *err, size_t errlen);

/* ---- network set-up (netconf.c) -------------------------------------------- */

int netconf_if_up(int ifindex);
int netconf_if_mtu(int ifindex, int mtu);
/* "addr/prefix", IPv4 or IPv6. */
int netconf_add_cidr(int ifindex, const char *cidr);
/* A default route via addr (IPv4 or IPv6). */
int netconf_add_gateway(const char *addr);
/* "net.ipv4.tcp_congestion_control=bbr" through /proc/sys. */
int netconf_sysctl(const char *key, const char *value);

/* ---- the fd map (fdmap.c) ----------------------------------------------------- */

struct lsock;

/* Start the readiness poller; 0 or -errno. */
int fdmap_init(void);
/* Stop it after the kernel halted. */
void fdmap_fini(void);

/*
 * Give kernel socket kfd a host fd (the program's end of a fresh
 * socketpair); the map owns kfd from here.  Returns the host fd or -1
 * with errno (kfd closed).
 */
int fdmap_new(int kfd, int cloexec);
/* 1 if host fd is one of ours (no reference taken). */
int fdmap_is_lkl(int fd);
/*
 * 0: fd is a host fd; 1: it is ours and *s holds a reference (drop it
 * with fdmap_put); -1: it is ours but unusable (the child of a fork):
 * errno is ENETDOWN.
 */
int fdmap_lookup(int fd, struct lsock **s);
/* The entry of host fd with a reference, or NULL. */
struct lsock *fdmap_get(int fd);
void fdmap_put(struct lsock *s);
int lsock_kfd(const struct lsock *s);
/* Re-check the kernel socket's readiness and mirror it to the host. */
void lsock_sync(struct lsock *s);
/* Host fd newfd (already open) maps to the same socket as s. */
void fdmap_alias(int newfd, struct lsock *s);
/* Forget host fd (before the host fd is closed or reused). */
void fdmap_forget(int fd);

/* After fork, in the child: the kernel is the parent's. */
extern int preload_forked;
/*
 * 1 on the child of a vfork (or clone with CLONE_VM): it runs on the
 * parent's memory until it execs, so it must touch neither the kernel
 * nor the fd map.  A getpid(): checked only where such a child may call
 * us (close, close_range, dup2/dup3), never on the data path.
 */
int fdmap_vfork_child(void);
/* The kernel serves syscalls. */
extern int preload_running;

/* Raise SIGPIPE on the calling thread (the kernel's EPIPE). */
void preload_sigpipe(void);

#endif

/*
 * In an interposed call on fd: a host fd goes to libc (host_call), a
 * kernel socket sets s (referenced), the child of a fork fails.
 */
#define ROUTE(fd, s, host_call)						\
	struct lsock *s;						\
	do {								\
		int kind_ = fdmap_lookup(fd, &s);			\
		if (kind_ < 0)						\
			return -1;					\
		if (!kind_)						\
			return host_call;				\
	} while (0)

/* End a call on s: re-check its readiness, drop it, set errno. */
static inline long lsock_done(struct lsock *s, long ret)
{
	lsock_sync(s);
	fdmap_put(s);
	return kret(ret);
}

/* End a call on s that cannot change its readiness. */
static inline long lsock_done_nosync(struct lsock *s, long ret)
{
	fdmap_put(s);
	return kret(ret);
}

/* Sends: never the kernel's SIGPIPE (it would stay pending on its task);
 * the host's, unless the caller asked for none. */
long ksend_result(long ret, int flags);
