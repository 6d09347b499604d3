/*
 * One rtnetlink request built in memory, for the C code that configures
 * a library kernel (preload/netconf.c, packetdrill/netconf.c): a header,
 * the body's struct (ifaddrmsg, rtmsg, tcmsg...) and its attributes.
 * Sending it is the caller's (each library has its own syscall path);
 * nl_ack() reads the kernel's answer.
 */
#ifndef LKL_NATIVE_NLMSG_H
#define LKL_NATIVE_NLMSG_H

#include <string.h>

#include <lkl/asm-generic/errno.h>
#include <lkl/linux/netlink.h>
#include <lkl/linux/rtnetlink.h>

struct nlreq {
	struct lkl_nlmsghdr nh;
	char body[512];		/* the body's struct, then the attributes */
};

static inline void *nl_tail(struct nlreq *r)
{
	return (char *)r + LKL_NLMSG_ALIGN(r->nh.nlmsg_len);
}

/* Append attribute type with len bytes of data. */
static inline void nl_attr(struct nlreq *r, int type, const void *data,
			   int len)
{
	struct lkl_rtattr *rta = nl_tail(r);

	rta->rta_type = type;
	rta->rta_len = LKL_RTA_LENGTH(len);
	memcpy(LKL_RTA_DATA(rta), data, len);
	r->nh.nlmsg_len = LKL_NLMSG_ALIGN(r->nh.nlmsg_len) +
			  LKL_RTA_ALIGN(rta->rta_len);
}

/* A zeroed request of type, acknowledged, with flags and a body_len body. */
static inline void nl_start(struct nlreq *r, int type, int flags,
			    int body_len)
{
	memset(r, 0, sizeof(*r));
	r->nh.nlmsg_type = type;
	r->nh.nlmsg_flags = LKL_NLM_F_REQUEST | LKL_NLM_F_ACK | flags;
	r->nh.nlmsg_seq = 1;
	r->nh.nlmsg_len = LKL_NLMSG_LENGTH(body_len);
}

/* The kernel's answer (0 or -errno) in a reply of n bytes; n < 0: recv's. */
static inline long nl_ack(const void *reply, long n)
{
	const struct lkl_nlmsghdr *h = reply;

	if (n < 0)
		return n;
	if (n < (long)sizeof(*h) || h->nlmsg_type != LKL_NLMSG_ERROR)
		return -LKL_EPROTO;
	return ((const struct lkl_nlmsgerr *)LKL_NLMSG_DATA(h))->error;
}

#endif
