/*
 * The kernel's side of packetdrill's test network, set up the way
 * packetdrill sets up its tun device: the NIC up with the script's MTU
 * and local address, the remote address routed through it, and the
 * kernel selftests' sysctls (defaults.sh) applied.  The NIC is NOARP:
 * like tun it needs no neighbour resolution, and IPv6 skips duplicate
 * address detection on it.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lkl/lkl.h>
#include <lkl/asm/unistd.h>
#include <lkl/linux/fcntl.h>
#include <lkl/linux/if.h>
#include <lkl/linux/if_addr.h>
#include <lkl/linux/in.h>
#include <lkl/linux/netlink.h>
#include <lkl/linux/pkt_sched.h>
#include <lkl/linux/rtnetlink.h>
#include <lkl/linux/sockios.h>
#include <lkl/linux/socket_abi.h>

#include "pd.h"
#include "../common/nlmsg.h"

static int nic_ifindex;
static char nic_name[LKL_IFNAMSIZ];
static long rx_packets_fd = -1, rx_dropped_fd = -1;

long pd_sys(long nr, long a1, long a2, long a3, long a4, long a5, long a6)
{
	long params[6] = { a1, a2, a3, a4, a5, a6 };

	return lkl_syscall(nr, params);
}

long pd_read_file(const char *path, char *buf, size_t len)
{
	long fd = pd_sys3(LKL__NR_openat, LKL_AT_FDCWD, path, LKL_O_RDONLY);
	long n, done = 0;

	if (fd < 0)
		return fd;
	while (done < (long)len - 1) {
		n = pd_sys3(LKL__NR_read, fd, buf + done, len - 1 - done);
		if (n <= 0)
			break;
		done += n;
	}
	buf[done] = 0;
	pd_sys1(LKL__NR_close, fd);
	return done;
}

/* "net.ipv4.tcp_sack" or "/proc/sys/net/ipv4/tcp_sack". */
static void sysctl_path(const char *name, char *path, size_t len)
{
	char *p;

	if (name[0] == '/') {
		snprintf(path, len, "%s", name);
		return;
	}
	snprintf(path, len, "/proc/sys/%s", name);
	for (p = path + strlen("/proc/sys/"); *p; p++)
		if (*p == '.')
			*p = '/';
}

int pd_sysctl_write(const char *name, const char *value)
{
	char path[256];
	long fd, n;

	sysctl_path(name, path, sizeof(path));
	fd = pd_sys3(LKL__NR_openat, LKL_AT_FDCWD, path, LKL_O_WRONLY);
	if (fd < 0)
		return fd;
	n = pd_sys3(LKL__NR_write, fd, value, strlen(value));
	pd_sys1(LKL__NR_close, fd);
	return n < 0 ? n : 0;
}

int pd_sysctl_read(const char *name, char *buf, size_t len)
{
	char path[256];
	long n;

	sysctl_path(name, path, sizeof(path));
	n = pd_read_file(path, buf, len);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = 0;
	return n;
}

int pd_apply_defaults(void)
{
	/* tools/testing/selftests/net/packetdrill/defaults.sh, in order. */
	static const char *const defaults[][2] = {
		{ "net.ipv4.tcp_rmem", "4096 540000 15728640" },
		{ "net.ipv4.tcp_wmem", "4096 262144 4194304" },
		{ "net.ipv4.tcp_timestamps", "1" },
		{ "net.ipv4.tcp_syn_retries", "5" },
		{ "net.ipv4.tcp_synack_retries", "5" },
		{ "net.ipv4.tcp_frto", "2" },
		{ "net.ipv4.tcp_sack", "1" },
		{ "net.ipv4.tcp_dsack", "1" },
		{ "net.ipv4.tcp_reordering", "3" },
		{ "net.ipv4.tcp_congestion_control", "cubic" },
		{ "net.ipv4.tcp_slow_start_after_idle", "0" },
		{ "net.ipv4.tcp_early_retrans", "4" },
		{ "net.ipv4.tcp_recovery", "1" },
		{ "net.ipv4.tcp_tso_win_divisor", "3" },
		{ "net.ipv4.tcp_ecn", "0" },
		{ "net.ipv4.tcp_pacing_ss_ratio", "200" },
		{ "net.ipv4.tcp_pacing_ca_ratio", "120" },
		{ "net.ipv4.tcp_fastopen", "0x70403" },
		{ "net.ipv4.tcp_fastopen_key",
		  "a1a1a1a1-b2b2b2b2-c3c3c3c3-d4d4d4d4" },
		{ "net.ipv4.tcp_syncookies", "1" },
	};
	unsigned int i;
	int err;

	for (i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++) {
		err = pd_sysctl_write(defaults[i][0], defaults[i][1]);
		if (err) {
			fprintf(stderr, "lkl-packetdrill: sysctl %s: %s\n",
				defaults[i][0], lkl_strerror(err));
			return err;
		}
	}
	/* defaults.sh ignores its failure (tcp_fack is gone, this may be). */
	pd_sysctl_write("net.ipv4.tcp_notsent_lowat", "4294967295");
	/* "tc qdisc add dev tun0 root pfifo": no pacing by a default qdisc. */
	return pd_set_root_qdisc("pfifo");
}

/* ---- rtnetlink ------------------------------------------------------------ */

/* Send one request, return the kernel's answer (0 or -errno). */
static long nl_call(struct nlreq *r)
{
	struct lkl_sockaddr_nl kernel = { .nl_family = LKL_AF_NETLINK };
	char buf[4096];
	long fd, n;

	fd = pd_sys3(LKL__NR_socket, LKL_AF_NETLINK, LKL_SOCK_RAW,
		     LKL_NETLINK_ROUTE);
	if (fd < 0)
		return fd;
	n = pd_sys(LKL__NR_sendto, fd, (long)r, r->nh.nlmsg_len, 0,
		   (long)&kernel, sizeof(kernel));
	if (n >= 0)
		n = pd_sys(LKL__NR_recvfrom, fd, (long)buf, sizeof(buf), 0,
			   0, 0);
	pd_sys1(LKL__NR_close, fd);
	return nl_ack(buf, n);
}

static int parse_ip(const char *s, int ipv6, void *addr)
{
	return inet_pton(ipv6 ? AF_INET6 : AF_INET, s, addr) == 1 ? 0 : -EINVAL;
}

static long add_address(int ipv6, int ifindex, const char *local, int prefix)
{
	struct nlreq r;
	struct lkl_ifaddrmsg *ifa = (void *)r.body;
	unsigned char addr[16];
	unsigned int flags = LKL_IFA_F_NODAD;

	if (parse_ip(local, ipv6, addr))
		return -EINVAL;
	nl_start(&r, LKL_RTM_NEWADDR, LKL_NLM_F_CREATE | LKL_NLM_F_EXCL,
		 sizeof(*ifa));
	ifa->ifa_family = ipv6 ? LKL_AF_INET6 : LKL_AF_INET;
	ifa->ifa_prefixlen = prefix;
	ifa->ifa_index = ifindex;
	nl_attr(&r, LKL_IFA_LOCAL, addr, ipv6 ? 16 : 4);
	nl_attr(&r, LKL_IFA_ADDRESS, addr, ipv6 ? 16 : 4);
	nl_attr(&r, LKL_IFA_FLAGS, &flags, sizeof(flags));
	return nl_call(&r);
}

/* remote/32 (/128) on the NIC, on link: what "via gateway" is on tun. */
static long add_route(int ipv6, int ifindex, const char *remote)
{
	struct nlreq r;
	struct lkl_rtmsg *rtm = (void *)r.body;
	unsigned char addr[16];
	unsigned int oif = ifindex;

	if (parse_ip(remote, ipv6, addr))
		return -EINVAL;
	nl_start(&r, LKL_RTM_NEWROUTE, LKL_NLM_F_CREATE | LKL_NLM_F_REPLACE,
		 sizeof(*rtm));
	rtm->rtm_family = ipv6 ? LKL_AF_INET6 : LKL_AF_INET;
	rtm->rtm_dst_len = ipv6 ? 128 : 32;
	rtm->rtm_table = LKL_RT_TABLE_MAIN;
	rtm->rtm_protocol = LKL_RTPROT_BOOT;
	rtm->rtm_scope = LKL_RT_SCOPE_LINK;
	rtm->rtm_type = LKL_RTN_UNICAST;
	nl_attr(&r, LKL_RTA_DST, addr, ipv6 ? 16 : 4);
	nl_attr(&r, LKL_RTA_OIF, &oif, sizeof(oif));
	return nl_call(&r);
}

int pd_set_root_qdisc(const char *kind)
{
	struct nlreq r;
	struct lkl_tcmsg *tcm = (void *)r.body;

	if (!nic_ifindex)
		return -ENODEV;
	nl_start(&r, LKL_RTM_NEWQDISC, LKL_NLM_F_CREATE | LKL_NLM_F_REPLACE,
		 sizeof(*tcm));
	tcm->tcm_family = LKL_AF_UNSPEC;
	tcm->tcm_ifindex = nic_ifindex;
	tcm->tcm_parent = LKL_TC_H_ROOT;
	nl_attr(&r, LKL_TCA_KIND, kind, strlen(kind) + 1);
	return nl_call(&r);
}

/* ---- the NIC ------------------------------------------------------------- */

static long if_ioctl(long req, struct lkl_ifreq *ifr, const char *name)
{
	long fd = pd_sys3(LKL__NR_socket, LKL_AF_INET, LKL_SOCK_DGRAM, 0);
	long ret;

	if (fd < 0)
		return fd;
	snprintf(ifr->ifr_ifrn.ifrn_name, LKL_IFNAMSIZ, "%s", name);
	ret = pd_sys3(LKL__NR_ioctl, fd, req, ifr);
	pd_sys1(LKL__NR_close, fd);
	return ret;
}

static long if_up(const char *name, int extra_flags)
{
	struct lkl_ifreq ifr;
	long err;

	memset(&ifr, 0, sizeof(ifr));
	err = if_ioctl(LKL_SIOCGIFFLAGS, &ifr, name);
	if (err)
		return err;
	ifr.ifr_ifru.ifru_flags |= LKL_IFF_UP | extra_flags;
	return if_ioctl(LKL_SIOCSIFFLAGS, &ifr, name);
}

static long open_stat(const char *stat)
{
	char path[128];

	snprintf(path, sizeof(path), "/sys/class/net/%s/statistics/%s",
		 nic_name, stat);
	return pd_sys3(LKL__NR_openat, LKL_AT_FDCWD, path, LKL_O_RDONLY);
}

static long long read_stat(long fd)
{
	char buf[32];
	long n = pd_sys(LKL__NR_pread64, fd, (long)buf, sizeof(buf) - 1, 0,
			0, 0);

	if (n <= 0)
		return -1;
	buf[n] = 0;
	return strtoll(buf, NULL, 10);
}

long long pd_nic_rx_count(void)
{
	return read_stat(rx_packets_fd) + read_stat(rx_dropped_fd);
}

/*
 * A fresh kernel's first TCP connect fills the 256 KiB table that
 * perturbs ephemeral ports (get_random_sleepable_once() in
 * __inet_hash_connect(), CONFIG_INET_TABLE_PERTURB_ORDER=16): about
 * 0.7 ms of ChaCha20, up to 5 ms on a loaded machine, which a script's
 * first connect would otherwise show as a late SYN.  A host kernel did
 * it long before any test; so does this one, with one connect over
 * loopback to a closed port.
 */
static void warm_up_connect(void)
{
	struct lkl_sockaddr_in to = {
		.sin_family = LKL_AF_INET,
		.sin_port = htons(9),
		.sin_addr = { htonl(0x7f000001) },
	};
	long fd = pd_sys3(LKL__NR_socket, LKL_AF_INET,
			  LKL_SOCK_STREAM | LKL_SOCK_NONBLOCK, 0);

	if (fd < 0)
		return;
	pd_sys3(LKL__NR_connect, fd, &to, sizeof(to));
	pd_sys1(LKL__NR_close, fd);
}

#define CHECK_STEP(what, expr)						\
	do {								\
		long __e = (expr);					\
		if (__e < 0) {						\
			fprintf(stderr, "lkl-packetdrill: %s: %s\n",	\
				what, lkl_strerror(__e));		\
			return __e;					\
		}							\
	} while (0)

int pd_netconf(const struct pd_config *cfg, int ifindex)
{
	struct lkl_ifreq ifr;
	char key[128];

	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_ifru.ifru_ivalue = ifindex;
	{
		long fd = pd_sys3(LKL__NR_socket, LKL_AF_INET, LKL_SOCK_DGRAM,
				  0);

		CHECK_STEP("socket", fd);
		CHECK_STEP("SIOCGIFNAME",
			   pd_sys3(LKL__NR_ioctl, fd, LKL_SIOCGIFNAME, &ifr));
		pd_sys1(LKL__NR_close, fd);
	}
	memcpy(nic_name, ifr.ifr_ifrn.ifrn_name, LKL_IFNAMSIZ);
	nic_ifindex = ifindex;

	CHECK_STEP("lo up", if_up("lo", 0));
	warm_up_connect();
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_ifru.ifru_mtu = cfg->mtu;
	CHECK_STEP("SIOCSIFMTU", if_ioctl(LKL_SIOCSIFMTU, &ifr, nic_name));
	/* Nothing but the script's packets: no router solicitations. */
	snprintf(key, sizeof(key), "net.ipv6.conf.%s.router_solicitations",
		 nic_name);
	pd_sysctl_write(key, "0");
	snprintf(key, sizeof(key), "net.ipv6.conf.%s.accept_ra", nic_name);
	pd_sysctl_write(key, "0");
	CHECK_STEP("NIC up", if_up(nic_name, LKL_IFF_NOARP));
	CHECK_STEP("address", add_address(cfg->ipv6, ifindex, cfg->local,
					  cfg->prefix));
	CHECK_STEP("route", add_route(cfg->ipv6, ifindex, cfg->remote));

	rx_packets_fd = open_stat("rx_packets");
	CHECK_STEP("rx_packets", rx_packets_fd);
	rx_dropped_fd = open_stat("rx_dropped");
	CHECK_STEP("rx_dropped", rx_dropped_fd);
	return 0;
}
