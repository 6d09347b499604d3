/*
 * Configure the kernel's interfaces from C: flags and MTU by ioctl,
 * addresses and default routes by rtnetlink, sysctls through the
 * kernel's /proc/sys.  Each returns 0 or a negative errno.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lkl/asm/unistd.h>
#include <lkl/asm-generic/errno.h>
#include <lkl/linux/fcntl.h>
#include <lkl/linux/socket_abi.h>
#include <lkl/linux/in.h>
#include <lkl/linux/in6.h>
#include <lkl/linux/if.h>
#include <lkl/linux/sockios.h>
#include <lkl/linux/netlink.h>
#include <lkl/linux/rtnetlink.h>
#include <lkl/linux/if_addr.h>

#include "preload.h"
#include "../common/nlmsg.h"

/* ioctl req on the interface, with ifr's name filled in from ifindex. */
static long if_ioctl(int ifindex, long req, struct lkl_ifreq *ifr)
{
	long fd = ksys(LKL__NR_socket, LKL_AF_INET, LKL_SOCK_DGRAM, 0, 0, 0, 0);
	struct lkl_ifreq name;
	long ret;

	if (fd < 0)
		return fd;
	memset(&name, 0, sizeof(name));
	name.ifr_ifru.ifru_ivalue = ifindex;
	ret = ksys(LKL__NR_ioctl, fd, LKL_SIOCGIFNAME, (long)&name, 0, 0, 0);
	if (ret == 0) {
		memcpy(ifr->ifr_ifrn.ifrn_name, name.ifr_ifrn.ifrn_name,
		       LKL_IFNAMSIZ);
		ret = ksys(LKL__NR_ioctl, fd, req, (long)ifr, 0, 0, 0);
	}
	ksys(LKL__NR_close, fd, 0, 0, 0, 0, 0);
	return ret;
}

int netconf_if_up(int ifindex)
{
	struct lkl_ifreq ifr;
	long ret;

	memset(&ifr, 0, sizeof(ifr));
	ret = if_ioctl(ifindex, LKL_SIOCGIFFLAGS, &ifr);
	if (ret < 0)
		return (int)ret;
	ifr.ifr_ifru.ifru_flags |= LKL_IFF_UP;
	return (int)if_ioctl(ifindex, LKL_SIOCSIFFLAGS, &ifr);
}

int netconf_if_mtu(int ifindex, int mtu)
{
	struct lkl_ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_ifru.ifru_mtu = mtu;
	return (int)if_ioctl(ifindex, LKL_SIOCSIFMTU, &ifr);
}

/* One rtnetlink request; the kernel's acknowledgement. */
static long rtnl(struct nlreq *req)
{
	struct lkl_sockaddr_nl kernel = { .nl_family = LKL_AF_NETLINK };
	char buf[4096];
	long fd, ret;

	fd = ksys(LKL__NR_socket, LKL_AF_NETLINK, LKL_SOCK_RAW,
		  LKL_NETLINK_ROUTE, 0, 0, 0);
	if (fd < 0)
		return fd;
	ret = ksys(LKL__NR_sendto, fd, (long)req, req->nh.nlmsg_len, 0,
		   (long)&kernel, sizeof(kernel));
	if (ret >= 0)
		ret = nl_ack(buf, ksys(LKL__NR_recvfrom, fd, (long)buf,
				       sizeof(buf), 0, 0, 0));
	ksys(LKL__NR_close, fd, 0, 0, 0, 0, 0);
	return ret;
}

static int parse_ip(const char *s, unsigned char out[16], int *family)
{
	if (inet_pton(AF_INET, s, out) == 1) {
		*family = LKL_AF_INET;
		return 4;
	}
	if (inet_pton(AF_INET6, s, out) == 1) {
		*family = LKL_AF_INET6;
		return 16;
	}
	return -LKL_EINVAL;
}

int netconf_add_cidr(int ifindex, const char *cidr)
{
	struct nlreq req;
	struct lkl_ifaddrmsg *ifa = (void *)req.body;
	unsigned char addr[16];
	char host[64], *slash, *end;
	uint32_t flags = LKL_IFA_F_NODAD;
	int family, alen;
	long prefix;

	snprintf(host, sizeof(host), "%s", cidr);
	slash = strchr(host, '/');
	if (!slash)
		return -LKL_EINVAL;
	*slash = 0;
	alen = parse_ip(host, addr, &family);
	prefix = strtol(slash + 1, &end, 10);
	if (alen < 0 || *end || end == slash + 1 || prefix < 0 ||
	    prefix > alen * 8)
		return -LKL_EINVAL;
	nl_start(&req, LKL_RTM_NEWADDR, LKL_NLM_F_CREATE | LKL_NLM_F_EXCL,
		 sizeof(*ifa));
	ifa->ifa_family = family;
	ifa->ifa_prefixlen = prefix;
	ifa->ifa_index = ifindex;
	nl_attr(&req, LKL_IFA_LOCAL, addr, alen);
	nl_attr(&req, LKL_IFA_ADDRESS, addr, alen);
	/* Usable at once: no duplicate detection on the program's network. */
	nl_attr(&req, LKL_IFA_FLAGS, &flags, sizeof(flags));
	return (int)rtnl(&req);
}

int netconf_add_gateway(const char *gw)
{
	struct nlreq req;
	struct lkl_rtmsg *rt = (void *)req.body;
	unsigned char addr[16];
	int family, alen;

	alen = parse_ip(gw, addr, &family);
	if (alen < 0)
		return alen;
	nl_start(&req, LKL_RTM_NEWROUTE, LKL_NLM_F_CREATE | LKL_NLM_F_EXCL,
		 sizeof(*rt));
	rt->rtm_family = family;
	rt->rtm_table = LKL_RT_TABLE_MAIN;
	rt->rtm_protocol = LKL_RTPROT_BOOT;
	rt->rtm_scope = LKL_RT_SCOPE_UNIVERSE;
	rt->rtm_type = LKL_RTN_UNICAST;
	nl_attr(&req, LKL_RTA_GATEWAY, addr, alen);
	return (int)rtnl(&req);
}

int netconf_sysctl(const char *key, const char *value)
{
	char path[256], *p;
	long fd, ret;
	size_t len = strlen(value);

	if (!*key || strstr(key, "..") || strchr(key, '/'))
		return -LKL_EINVAL;
	snprintf(path, sizeof(path), "/proc/sys/%s", key);
	for (p = path + 10; *p; p++)
		if (*p == '.')
			*p = '/';
	fd = ksys(LKL__NR_openat, LKL_AT_FDCWD, (long)path, LKL_O_WRONLY, 0, 0,
		  0);
	if (fd < 0)
		return (int)fd;
	ret = ksys(LKL__NR_write, fd, (long)value, len, 0, 0, 0);
	ksys(LKL__NR_close, fd, 0, 0, 0, 0, 0);
	if (ret >= 0 && (size_t)ret != len)
		ret = -LKL_EIO;
	return ret < 0 ? (int)ret : 0;
}
