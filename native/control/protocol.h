/*
 * The control protocol: how another process of the same user runs
 * syscalls in a kernel that serves a control socket (server.c), e.g.
 * the attach library LD_PRELOADed into ip, ss, tc (native/attach/).
 *
 * Every message is a fixed header, then `len` bytes of data.  A request
 * carries up to four integer arguments; its reply, the same op with
 * CTL_REPLY set, carries the result (a negative errno on failure) and
 * up to three more integers.  Both ends are on one host: integers are
 * in host byte order.  A message whose magic, version or length is
 * wrong ends the connection; a well-formed request the server cannot
 * run gets an error reply.  Lengths are bounded by CTL_MAX_DATA.
 */
#ifndef LKL_CONTROL_PROTOCOL_H
#define LKL_CONTROL_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#define CTL_MAGIC	0x434c4b4cU	/* "LKLC" */
#define CTL_VERSION	1
#define CTL_MAX_DATA	(1U << 20)
#define CTL_REPLY	0x8000

enum ctl_op {
	CTL_HELLO = 1,		/* -> a0 pid, a1 start time (s), a2 version; data name */
	CTL_SOCKET,		/* a0 domain, a1 type, a2 protocol -> fd */
	CTL_OPEN,		/* a0 flags, a1 mode; data path -> fd */
	CTL_CLOSE,		/* a0 fd */
	CTL_READ,		/* a0 fd, a1 count -> n; data */
	CTL_WRITE,		/* a0 fd; data -> n */
	CTL_LSEEK,		/* a0 fd, a1 offset, a2 whence -> offset */
	CTL_SENDTO,		/* a0 fd, a1 flags, a2 addrlen; data addr + payload -> n */
	CTL_RECVFROM,		/* a0 fd, a1 flags, a2 cap, a3 addr cap
				 * -> n, r0 addrlen, r1 msg_flags; data addr + payload */
	CTL_BIND,		/* a0 fd; data addr */
	CTL_CONNECT,		/* a0 fd; data addr */
	CTL_GETSOCKNAME,	/* a0 fd, a1 cap, a2 1 for the peer -> r0 len; data */
	CTL_SETSOCKOPT,		/* a0 fd, a1 level, a2 name; data value */
	CTL_GETSOCKOPT,		/* a0 fd, a1 level, a2 name, a3 cap -> r0 len; data */
	CTL_IOCTL,		/* a0 fd, a1 request; data argument -> data */
	CTL_STAT,		/* a0 AT_* flags; data path -> data struct statx */
	CTL_GETDENTS,		/* a0 fd, a1 cap -> n; data linux_dirent64 records */
	CTL_POLL,		/* a0 timeout ms; data struct ctl_pollfd[] -> data */
	CTL_CAPTURE_START,	/* a0 snaplen, a1 count; data ifname; SCM_RIGHTS fd -> id */
	CTL_CAPTURE_STATUS,	/* a0 id -> r0 frames, r1 dropped, r2 1 once done */
	CTL_CAPTURE_STOP,	/* a0 id -> r0 frames, r1 dropped */
	CTL_STATS,		/* -> r0 requests, r1 malformed, r2 clients; result open fds */
	CTL_ETHTOOL,		/* a0 fd; data ifname[16] + the command's struct -> data */
	CTL_RECVBATCH,		/* a0 fd, a1 flags (MSG_DONTWAIT), a2 max datagrams
				 * -> count; data struct ctl_dgram records */
	CTL_OP_MAX
};

struct ctl_request {
	uint32_t magic;
	uint16_t version;
	uint16_t op;
	uint32_t len;		/* bytes of data that follow */
	uint32_t seq;		/* echoed in the reply */
	int64_t arg[4];
};

struct ctl_reply {
	uint32_t magic;
	uint16_t version;
	uint16_t op;		/* the request's op | CTL_REPLY */
	uint32_t len;
	uint32_t seq;
	int64_t result;		/* >= 0, or -errno */
	int64_t ret[3];
};

struct ctl_pollfd {
	int32_t fd;
	int16_t events;
	int16_t revents;
};

/*
 * One datagram of a CTL_RECVBATCH reply: a whole netlink dump crosses in
 * one reply (the client keeps what its recvmsg did not take yet).  The
 * name, then the data follow; the next record starts 8-aligned.
 */
struct ctl_dgram {
	uint32_t len;		/* data bytes */
	uint32_t flags;		/* msg_flags */
	uint32_t namelen;	/* bytes of name (<= CTL_ADDR_MAX) */
	uint32_t pad;
};

#define CTL_DGRAM_SPACE(namelen, len) \
	((sizeof(struct ctl_dgram) + (namelen) + (len) + 7) & ~(size_t)7)

#define CTL_POLL_MAX_FDS	64
#define CTL_POLL_MAX_MS		10000
#define CTL_ADDR_MAX		128

/*
 * The size of the argument of an ioctl the proxy forwards, or 0 for one
 * it does not (arguments holding pointers, such as SIOCGIFCONF and
 * SIOCETHTOOL, cannot cross the socket as bytes).
 */
static inline unsigned int ctl_ioctl_size(unsigned long request)
{
	switch (request) {
	case 0x541B:	/* FIONREAD, SIOCINQ */
	case 0x5411:	/* TIOCOUTQ, SIOCOUTQ */
	case 0x8905:	/* SIOCATMARK */
		return 4;
	case 0x8910:	/* SIOCGIFNAME */
	case 0x8913: case 0x8914:	/* SIOCGIFFLAGS, SIOCSIFFLAGS */
	case 0x8915: case 0x8916:	/* SIOCGIFADDR, SIOCSIFADDR */
	case 0x8917: case 0x8918:	/* SIOCGIFDSTADDR, SIOCSIFDSTADDR */
	case 0x8919: case 0x891a:	/* SIOCGIFBRDADDR, SIOCSIFBRDADDR */
	case 0x891b: case 0x891c:	/* SIOCGIFNETMASK, SIOCSIFNETMASK */
	case 0x891d: case 0x891e:	/* SIOCGIFMETRIC, SIOCSIFMETRIC */
	case 0x8921: case 0x8922:	/* SIOCGIFMTU, SIOCSIFMTU */
	case 0x8923:			/* SIOCSIFNAME */
	case 0x8924:			/* SIOCSIFHWADDR */
	case 0x8927:			/* SIOCGIFHWADDR */
	case 0x8933:			/* SIOCGIFINDEX */
	case 0x8942: case 0x8943:	/* SIOCGIFTXQLEN, SIOCSIFTXQLEN */
		return 40;		/* struct ifreq */
	default:
		return 0;
	}
}

/*
 * SIOCETHTOOL's argument is a struct ifreq whose ifr_data points to the
 * command's struct: the size of that struct for the read-only commands
 * the proxy forwards, from its first bytes (have of them: the variable
 * ones need their header), or 0.  Both ends compute it, so the server
 * never lets the kernel write past what it holds.
 */
static inline size_t ctl_ethtool_size(const uint8_t *p, size_t have)
{
	uint32_t cmd, n;
	uint64_t mask;
	int bits = 0;

	if (have < 4)
		return 0;
	cmd = *(const uint32_t *)p;
	switch (cmd) {
	case 0x01: return 44;		/* ETHTOOL_GSET */
	case 0x03: return 196;		/* ETHTOOL_GDRVINFO */
	case 0x05: return 20;		/* ETHTOOL_GWOL */
	case 0x07: case 0x0a:		/* ETHTOOL_GMSGLVL, GLINK */
	case 0x14: case 0x16: case 0x18:	/* GRXCSUM, GTXCSUM, GSG */
	case 0x1e: case 0x21: case 0x23:	/* GTSO, GUFO, GGSO */
	case 0x25: case 0x27: case 0x2b:	/* GFLAGS, GPFLAGS, GGRO */
		return 8;		/* struct ethtool_value */
	case 0x0e: return 92;		/* ETHTOOL_GCOALESCE */
	case 0x10: return 36;		/* ETHTOOL_GRINGPARAM */
	case 0x12: return 16;		/* ETHTOOL_GPAUSEPARAM */
	case 0x3c: return 36;		/* ETHTOOL_GCHANNELS */
	case 0x41: return 44;		/* ETHTOOL_GET_TS_INFO */
	case 0x44: return 40;		/* ETHTOOL_GEEE */
	case 0x1b:			/* ETHTOOL_GSTRINGS: len strings of 32 */
		if (have < 12)
			return 0;
		n = *(const uint32_t *)(p + 8);
		return n > 8192 ? 0 : 12 + (size_t)n * 32;
	case 0x37:			/* ETHTOOL_GSSET_INFO: a u32 per set bit */
		if (have < 16)
			return 0;
		mask = *(const uint64_t *)(p + 8);
		for (; mask; mask &= mask - 1)
			bits++;
		return 16 + 4 * bits;
	case 0x3a:			/* ETHTOOL_GFEATURES: size blocks of 16 */
		if (have < 8)
			return 0;
		n = *(const uint32_t *)(p + 4);
		return n > 64 ? 0 : 8 + (size_t)n * 16;
	case 0x4c:			/* ETHTOOL_GLINKSETTINGS: 3 masks of nwords */
		if (have < 16)
			return 0;
		n = (uint32_t)(((const int8_t *)p)[15] < 0 ?
			       -((const int8_t *)p)[15] : ((const int8_t *)p)[15]);
		return 48 + 12 * (size_t)n;
	default:
		return 0;
	}
}

#endif
