/*
 * The packetdrill adapter: packetdrill's shared-object mode
 * (--so_filename) run against the lkl kernel.  One kernel per process,
 * one NIC whose frames go to and come from packetdrill in memory.
 */
#ifndef LKL_PD_H
#define LKL_PD_H

#include <stddef.h>
#include <stdint.h>

struct lkl_netdev_backend;

/*
 * lkl's fds are offered to packetdrill as fd + PD_FD_BASE, so that no
 * number packetdrill sees is also one of the host's (its own close and
 * getsockopt on them reach lkl through hostcalls.c).
 */
#define PD_FD_BASE	1000

/* An lkl syscall; negative errno on failure. */
long pd_sys(long nr, long a1, long a2, long a3, long a4, long a5, long a6);
#define pd_sys0(nr)		pd_sys(nr, 0, 0, 0, 0, 0, 0)
#define pd_sys1(nr, a)		pd_sys(nr, (long)(a), 0, 0, 0, 0, 0)
#define pd_sys2(nr, a, b)	pd_sys(nr, (long)(a), (long)(b), 0, 0, 0, 0)
#define pd_sys3(nr, a, b, c)	pd_sys(nr, (long)(a), (long)(b), (long)(c), \
				       0, 0, 0)

/* 1 once the kernel runs and the NIC is configured. */
int pd_ready(void);

/* ---- backend.c: the in-memory packet path ------------------------------- */

/* The backend for the NIC (owned by the device once created). */
struct lkl_netdev_backend *pd_backend_create(void);
/* The NIC's MAC, for the frames we make up for packetdrill's packets. */
void pd_backend_set_mac(const uint8_t mac[6]);
/* Queue one IP packet for the kernel; 0 or -errno. */
int pd_backend_inject(const void *ip, size_t len);
/*
 * The next IP packet the kernel sent, waiting up to timeout_ms: its
 * length (0 on timeout) into *len, its send time in microseconds of
 * gettimeofday into *usecs.
 */
int pd_backend_sniff(void *buf, size_t *len, long long *usecs,
		     int timeout_ms);

/* ---- netconf.c: the kernel's side of the test network ------------------- */

struct pd_config {
	int ipv6;
	char local[64];		/* our address */
	int prefix;		/* its prefix length */
	char remote[64];	/* packetdrill's "remote" host */
	int mtu;
	int direct;		/* direct syscalls instead of shadow threads */
	int sniff_timeout_ms;	/* longest wait for an outgoing packet */
};

/* Write a sysctl by its /proc/sys path or dotted name; 0 or -errno. */
int pd_sysctl_write(const char *name, const char *value);
/* Read one into buf (newline stripped); length or -errno. */
int pd_sysctl_read(const char *name, char *buf, size_t len);
/* What the kernel selftests' defaults.sh sets; 0 or -errno. */
int pd_apply_defaults(void);
/* "tc qdisc add|replace dev <nic> root <kind>" for option-less kinds. */
int pd_set_root_qdisc(const char *kind);
/* Bring the NIC (ifindex) and loopback up with the test's addresses. */
int pd_netconf(const struct pd_config *cfg, int ifindex);
/* Packets the kernel's driver has received on the NIC (rx + dropped). */
long long pd_nic_rx_count(void);
/* Read a whole kernel file into buf (NUL terminated); length or -errno. */
long pd_read_file(const char *path, char *buf, size_t len);

/* ---- hostcalls.c --------------------------------------------------------- */

/* Run a script's shell command against lkl; a wait(2) status. */
int pd_run_command(const char *cmd);

#endif
