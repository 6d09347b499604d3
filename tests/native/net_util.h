/*
 * Network helpers for the C tests: configure a kernel interface
 * (ioctls for IPv4 and the MTU, rtnetlink for IPv6 addresses), parse
 * addresses, and move bytes over kernel sockets.
 */
#ifndef LKL_TEST_NET_UTIL_H
#define LKL_TEST_NET_UTIL_H

#include <arpa/inet.h>
#include <string.h>

#include <lkl/linux/socket_abi.h>
#include <lkl/linux/in.h>
#include <lkl/linux/in6.h>
#include <lkl/linux/if.h>
#include <lkl/linux/sockios.h>
#include <lkl/linux/netlink.h>
#include <lkl/linux/rtnetlink.h>
#include <lkl/linux/if_addr.h>
#include <lkl/asm-generic/socket.h>
#include <lkl/asm-generic/errno.h>
#include <unistd.h>

#include "test_util.h"

/* An IPv4 or IPv6 socket address. */
struct net_addr {
	union {
		struct lkl_sockaddr_in v4;
		struct lkl_sockaddr_in6 v6;
	};
	int family;
	int len;
};

/* "10.0.0.1" or "fd00::1" and a port; 0 or -1. */
static inline int net_parse_addr(const char *s, int port, struct net_addr *a)
{
	memset(a, 0, sizeof(*a));
	if (inet_pton(AF_INET, s, &a->v4.sin_addr) == 1) {
		a->v4.sin_family = a->family = LKL_AF_INET;
		a->v4.sin_port = htons(port);
		a->len = sizeof(a->v4);
		return 0;
	}
	if (inet_pton(AF_INET6, s, &a->v6.sin6_addr) == 1) {
		a->v6.sin6_family = a->family = LKL_AF_INET6;
		a->v6.sin6_port = htons(port);
		a->len = sizeof(a->v6);
		return 0;
	}
	return -1;
}

/* The loopback address of family (LKL_AF_INET or LKL_AF_INET6), port. */
static inline struct net_addr net_loopback_addr(int family, int port)
{
	struct net_addr a;

	CHECK(net_parse_addr(family == LKL_AF_INET ? "127.0.0.1" : "::1", port,
			     &a) == 0, "loopback address");
	return a;
}

static inline void net_ifname(int ifindex, char name[LKL_IFNAMSIZ])
{
	struct lkl_ifreq ifr;
	long fd = CHECK_OK(sys(LKL__NR_socket, LKL_AF_INET, LKL_SOCK_DGRAM, 0));

	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_ifru.ifru_ivalue = ifindex;
	CHECK_OK(sys(LKL__NR_ioctl, fd, LKL_SIOCGIFNAME, (long)&ifr));
	memcpy(name, ifr.ifr_ifrn.ifrn_name, LKL_IFNAMSIZ);
	sys(LKL__NR_close, fd);
}

/* ioctl on the interface, with ifr's name filled in. */
static inline long net_if_ioctl(int ifindex, long req, struct lkl_ifreq *ifr)
{
	long fd = CHECK_OK(sys(LKL__NR_socket, LKL_AF_INET, LKL_SOCK_DGRAM, 0));
	long ret;

	net_ifname(ifindex, ifr->ifr_ifrn.ifrn_name);
	ret = sys(LKL__NR_ioctl, fd, req, (long)ifr);
	sys(LKL__NR_close, fd);
	return ret;
}

static inline void net_if_up(int ifindex)
{
	struct lkl_ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	CHECK_OK(net_if_ioctl(ifindex, LKL_SIOCGIFFLAGS, &ifr));
	ifr.ifr_ifru.ifru_flags |= LKL_IFF_UP;
	CHECK_OK(net_if_ioctl(ifindex, LKL_SIOCSIFFLAGS, &ifr));
}

static inline void net_if_set_mtu(int ifindex, int mtu)
{
	struct lkl_ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_ifru.ifru_mtu = mtu;
	CHECK_OK(net_if_ioctl(ifindex, LKL_SIOCSIFMTU, &ifr));
}

/* Send one rtnetlink request and wait for its acknowledgement. */
static inline long net_rtnl(void *req, size_t len)
{
	struct lkl_sockaddr_nl kernel = { .nl_family = LKL_AF_NETLINK };
	char buf[4096];
	struct lkl_nlmsghdr *h = (void *)buf;
	long fd, n, ret;

	fd = CHECK_OK(sys(LKL__NR_socket, LKL_AF_NETLINK, LKL_SOCK_RAW,
			  LKL_NETLINK_ROUTE));
	CHECK_OK(sys(LKL__NR_sendto, fd, (long)req, len, 0, (long)&kernel,
		     sizeof(kernel)));
	n = CHECK_OK(sys(LKL__NR_recvfrom, fd, (long)buf, sizeof(buf), 0, 0, 0));
	CHECK(n >= (long)sizeof(*h) && h->nlmsg_type == LKL_NLMSG_ERROR,
	      "rtnetlink answered type %d", h->nlmsg_type);
	ret = ((struct lkl_nlmsgerr *)LKL_NLMSG_DATA(h))->error;
	sys(LKL__NR_close, fd);
	return ret;
}

/* Add addr/prefix (IPv4 or IPv6) to the interface, with RTM_NEWADDR. */
static inline void net_if_add_addr(int ifindex, const char *addr, int prefix)
{
	struct {
		struct lkl_nlmsghdr nh;
		struct lkl_ifaddrmsg ifa;
		struct lkl_rtattr rta;
		uint8_t data[16];
		struct lkl_rtattr rta_flags;
		uint32_t flags;
	} req;
	struct net_addr a;
	int alen;

	CHECK(net_parse_addr(addr, 0, &a) == 0, "bad address %s", addr);
	alen = a.family == LKL_AF_INET ? 4 : 16;
	memset(&req, 0, sizeof(req));
	req.nh.nlmsg_type = LKL_RTM_NEWADDR;
	req.nh.nlmsg_flags = LKL_NLM_F_REQUEST | LKL_NLM_F_ACK |
			     LKL_NLM_F_CREATE | LKL_NLM_F_EXCL;
	req.nh.nlmsg_seq = 1;
	req.ifa.ifa_family = a.family;
	req.ifa.ifa_prefixlen = prefix;
	req.ifa.ifa_index = ifindex;
	req.rta.rta_type = LKL_IFA_LOCAL;
	req.rta.rta_len = LKL_RTA_LENGTH(16);
	memcpy(req.data, a.family == LKL_AF_INET ? (void *)&a.v4.sin_addr :
		(void *)&a.v6.sin6_addr, alen);
	/* Usable at once: the test network is ours, no duplicate to detect. */
	req.rta_flags.rta_type = LKL_IFA_FLAGS;
	req.rta_flags.rta_len = LKL_RTA_LENGTH(4);
	req.flags = LKL_IFA_F_NODAD;
	req.nh.nlmsg_len = sizeof(req);
	if (a.family == LKL_AF_INET) {
		/* IPv4 takes a 4-byte attribute; move the flags up behind it. */
		req.rta.rta_len = LKL_RTA_LENGTH(4);
		req.nh.nlmsg_len = LKL_NLMSG_LENGTH(sizeof(req.ifa)) +
				   LKL_RTA_SPACE(4);
	}
	CHECK(net_rtnl(&req, req.nh.nlmsg_len) == 0, "RTM_NEWADDR %s/%d",
	      addr, prefix);
}

/* "addr/prefix". */
static inline void net_if_add_cidr(int ifindex, const char *cidr)
{
	char buf[64], *slash;

	snprintf(buf, sizeof(buf), "%s", cidr);
	slash = strchr(buf, '/');
	CHECK(slash != NULL, "no prefix in %s", cidr);
	*slash = 0;
	net_if_add_addr(ifindex, buf, atoi(slash + 1));
}

/* ---- sockets ---------------------------------------------------------------- */

static inline long net_listen(const char *addr, int port)
{
	struct net_addr a;
	long fd;
	int one = 1;

	CHECK(net_parse_addr(addr, port, &a) == 0, "bad address %s", addr);
	fd = CHECK_OK(sys(LKL__NR_socket, a.family, LKL_SOCK_STREAM, 0));
	CHECK_OK(sys(LKL__NR_setsockopt, fd, LKL_SOL_SOCKET, LKL_SO_REUSEADDR,
		     (long)&one, sizeof(one)));
	CHECK_OK(sys(LKL__NR_bind, fd, (long)&a, a.len));
	CHECK_OK(sys(LKL__NR_listen, fd, 4));
	return fd;
}

static inline long net_connect(const char *addr, int port)
{
	struct net_addr a;
	long fd, ret;
	int tries;

	CHECK(net_parse_addr(addr, port, &a) == 0, "bad address %s", addr);
	/* The peer may still be getting ready: retry a refused connect. */
	for (tries = 0; tries < 100; tries++) {
		fd = CHECK_OK(sys(LKL__NR_socket, a.family, LKL_SOCK_STREAM, 0));
		ret = sys(LKL__NR_connect, fd, (long)&a, a.len);
		if (ret == 0)
			return fd;
		sys(LKL__NR_close, fd);
		CHECK(ret == -LKL_ECONNREFUSED || ret == -LKL_ENETUNREACH ||
		      ret == -LKL_EHOSTUNREACH, "connect %s:%d: %s", addr, port,
		      lkl_strerror(ret));
		usleep(50000);
	}
	CHECK(0, "connect %s:%d: refused for 5 s", addr, port);
	return -1;
}

/* A connected TCP pair over family's loopback: *cli and *srv (accepted). */
static inline void net_loopback_pair(int family, int port, long *cli, long *srv)
{
	const char *addr = family == LKL_AF_INET ? "127.0.0.1" : "::1";
	long l = net_listen(addr, port);

	*cli = net_connect(addr, port);
	*srv = CHECK_OK(sys(LKL__NR_accept4, l, 0, 0, 0));
	sys(LKL__NR_close, l);
}

static inline void net_send_all(long fd, const void *buf, size_t len)
{
	size_t done = 0;

	while (done < len)
		done += CHECK_OK(sys(LKL__NR_sendto, fd,
				     (long)((const char *)buf + done),
				     len - done, 0, 0, 0));
}

static inline void net_hex(const uint8_t d[32], char out[65])
{
	int i;

	for (i = 0; i < 32; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
}

#endif
