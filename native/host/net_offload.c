/*
 * Checking and finishing received offload state: see net_offload.h.
 * Only what the device offers is accepted: TCP over IPv4 and IPv6 for
 * super-frames, any protocol for partial checksums.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <string.h>

#include <lkl/linux/virtio_net.h>

#include "net_offload.h"

#define ETH_P_IPV4	0x0800
#define ETH_P_IPV6	0x86dd
#define ETH_P_VLAN	0x8100
#define PROTO_TCP	6
#define TCP_CSUM_OFF	16
#define TCP_FIN		0x01
#define TCP_PSH		0x08
#define TCP_CWR		0x80
/* The kernel's TCP_MIN_GSO_SIZE: below it a super-frame is a lie. */
#define MIN_GSO_SIZE	8

#define F_TSO(t) ((t) == LKL_VIRTIO_NET_HDR_GSO_TCPV4 ?		\
		  LKL_VIRTIO_NET_F_GUEST_TSO4 : LKL_VIRTIO_NET_F_GUEST_TSO6)

uint32_t net_csum_add(uint32_t sum, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint64_t acc = sum;

	while (len >= 2) {
		acc += (uint16_t)(p[0] << 8 | p[1]);
		p += 2;
		len -= 2;
	}
	if (len)
		acc += (uint16_t)(p[0] << 8);
	while (acc >> 32)
		acc = (acc & 0xffffffff) + (acc >> 32);
	return acc;
}

uint16_t net_csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return sum;
}

static uint16_t get16(const uint8_t *p)
{
	return p[0] << 8 | p[1];
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v;
}

/* Where the IP header starts (after one optional VLAN tag) and its type. */
static size_t l3_offset(const uint8_t *head, size_t head_len, uint16_t *proto)
{
	size_t off = 12;

	*proto = get16(head + off);
	if (*proto == ETH_P_VLAN) {
		if (head_len < 18)
			return 0;
		off += 4;
		*proto = get16(head + off);
	}
	return off + 2;
}

/*
 * A TCP super-frame must be what its header says: the right IP version
 * carrying TCP, with the checksum asked for at the TCP checksum field.
 */
static int gso_truthful(const vnet_hdr_t *hdr, const uint8_t *head,
			size_t head_len, size_t frame_len)
{
	int type = hdr->gso_type & ~LKL_VIRTIO_NET_HDR_GSO_ECN;
	size_t l3, l4;
	uint16_t proto;

	if (type != LKL_VIRTIO_NET_HDR_GSO_TCPV4 &&
	    type != LKL_VIRTIO_NET_HDR_GSO_TCPV6)
		return 0;
	if (hdr->gso_size < MIN_GSO_SIZE ||
	    !(hdr->flags & LKL_VIRTIO_NET_HDR_F_NEEDS_CSUM) ||
	    hdr->csum_offset != TCP_CSUM_OFF)
		return 0;
	l3 = l3_offset(head, head_len, &proto);
	if (!l3)
		return 0;
	l4 = hdr->csum_start;

	if (type == LKL_VIRTIO_NET_HDR_GSO_TCPV4) {
		if (proto != ETH_P_IPV4 || head_len < l3 + 20 ||
		    head[l3] >> 4 != 4 || head[l3 + 9] != PROTO_TCP ||
		    l4 != l3 + (head[l3] & 0xf) * 4 || (head[l3] & 0xf) < 5)
			return 0;
	} else {
		/* No extension headers: what the host stack sends. */
		if (proto != ETH_P_IPV6 || head_len < l3 + 40 ||
		    head[l3] >> 4 != 6 || head[l3 + 6] != PROTO_TCP ||
		    l4 != l3 + 40)
			return 0;
	}
	if (head_len < l4 + 20 || (head[l4 + 12] >> 4) < 5 ||
	    l4 + (head[l4 + 12] >> 4) * 4 > frame_len)
		return 0;
	return 1;
}

enum rx_verdict net_rx_check(vnet_hdr_t *hdr, const uint8_t *head,
			     size_t head_len, size_t frame_len,
			     uint64_t features)
{
	const uint8_t known = LKL_VIRTIO_NET_HDR_F_NEEDS_CSUM |
			      LKL_VIRTIO_NET_HDR_F_DATA_VALID;
	int guest_csum = (features >> LKL_VIRTIO_NET_F_GUEST_CSUM) & 1;

	if (frame_len < ETH_HDR_LEN || (hdr->flags & ~known))
		return RX_MALFORMED;
	if ((hdr->flags & LKL_VIRTIO_NET_HDR_F_NEEDS_CSUM) &&
	    (hdr->csum_start < ETH_HDR_LEN ||
	     (size_t)hdr->csum_start + hdr->csum_offset + 2 > frame_len))
		return RX_MALFORMED;

	if (hdr->gso_type != LKL_VIRTIO_NET_HDR_GSO_NONE) {
		int type = hdr->gso_type & ~LKL_VIRTIO_NET_HDR_GSO_ECN;

		if (!gso_truthful(hdr, head, head_len, frame_len))
			return RX_MALFORMED;
		/* ECN super-frames need GUEST_ECN, which is never offered. */
		if (!((features >> F_TSO(type)) & 1) ||
		    (hdr->gso_type & LKL_VIRTIO_NET_HDR_GSO_ECN))
			return RX_SW_GSO;
		return RX_PASS;
	}

	if (!guest_csum) {
		/* Without GUEST_CSUM the driver wants flags zero (5.1.6.4). */
		if (hdr->flags & LKL_VIRTIO_NET_HDR_F_NEEDS_CSUM)
			return RX_SW_CSUM;
		hdr->flags = 0;
	}
	return RX_PASS;
}

/* Sum bytes [from, to) of a frame spread over iov. */
static uint32_t iov_csum(const struct iovec *iov, int iovcnt, size_t from,
			 size_t to)
{
	uint32_t sum = 0;
	size_t pos = 0;
	int i;

	for (i = 0; i < iovcnt && pos < to; pos += iov[i].iov_len, i++) {
		size_t a = from > pos ? from - pos : 0;
		size_t b = iov[i].iov_len;
		uint32_t part;

		if (pos + b > to)
			b = to - pos;
		if (a >= b)
			continue;
		part = net_csum_fold(net_csum_add(0, (uint8_t *)iov[i].iov_base + a,
						  b - a));
		/* A piece at an odd offset sums with its bytes swapped. */
		if ((pos + a - from) & 1)
			part = ((part & 0xff) << 8) | (part >> 8);
		sum += part;
	}
	return sum;
}

void net_csum_finish(vnet_hdr_t *hdr, const struct iovec *iov, int iovcnt,
		     size_t frame_len)
{
	size_t at = (size_t)hdr->csum_start + hdr->csum_offset;
	uint16_t csum;
	uint8_t *p0, *p1;

	/* The field holds the pseudo-header sum; it is part of the sum. */
	csum = ~net_csum_fold(iov_csum(iov, iovcnt, hdr->csum_start,
				       frame_len));
	p0 = iov_byte(iov, iovcnt, at);
	p1 = iov_byte(iov, iovcnt, at + 1);
	if (p0 && p1) {
		*p0 = csum >> 8;
		*p1 = csum;
	}
	hdr->flags = 0;
}

/* The TCP pseudo-header sum for a segment of tcp_len bytes. */
static uint32_t pseudo_sum(const uint8_t *ip, int v6, size_t tcp_len)
{
	uint32_t sum;

	if (v6) {
		sum = net_csum_add(0, ip + 8, 32);
		sum += (tcp_len >> 16) + (tcp_len & 0xffff);
	} else {
		sum = net_csum_add(0, ip + 12, 8);
		sum += tcp_len;
	}
	return sum + PROTO_TCP;
}

int net_gso_segment(const vnet_hdr_t *hdr, const uint8_t *frame,
		    size_t frame_len, uint8_t *scratch, size_t scratch_len,
		    int (*emit)(void *arg, const uint8_t *seg, size_t len),
		    void *arg)
{
	size_t l4 = hdr->csum_start, hlen, payload, off, seg;
	int v6 = (hdr->gso_type & ~LKL_VIRTIO_NET_HDR_GSO_ECN) ==
		 LKL_VIRTIO_NET_HDR_GSO_TCPV6;
	size_t mss = hdr->gso_size;
	uint16_t proto, ip_id;
	uint32_t seq;
	size_t l3;
	int n = 0;

	l3 = l3_offset(frame, frame_len, &proto);
	hlen = l4 + (frame[l4 + 12] >> 4) * 4;
	if (hlen + mss > scratch_len)
		return 0;
	payload = frame_len - hlen;
	seq = (uint32_t)frame[l4 + 4] << 24 | frame[l4 + 5] << 16 |
	      frame[l4 + 6] << 8 | frame[l4 + 7];
	ip_id = v6 ? 0 : get16(frame + l3 + 4);

	for (off = 0; off < payload || (off == 0 && payload == 0); off += seg) {
		uint8_t *ip = scratch + l3, *tcp = scratch + l4;
		int last;
		uint32_t s;

		seg = payload - off < mss ? payload - off : mss;
		last = off + seg >= payload;
		memcpy(scratch, frame, hlen);
		memcpy(scratch + hlen, frame + hlen + off, seg);

		if (v6) {
			put16(ip + 4, hlen - l3 - 40 + seg);
		} else {
			put16(ip + 2, hlen - l3 + seg);
			put16(ip + 4, ip_id + n);
			put16(ip + 10, 0);
			put16(ip + 10, ~net_csum_fold(net_csum_add(0, ip,
							 l4 - l3)));
		}
		s = seq + off;
		tcp[4] = s >> 24;
		tcp[5] = s >> 16;
		tcp[6] = s >> 8;
		tcp[7] = s;
		if (!last)
			tcp[13] &= ~(TCP_FIN | TCP_PSH);
		if (n)
			tcp[13] &= ~TCP_CWR;
		put16(tcp + TCP_CSUM_OFF, 0);
		s = pseudo_sum(ip, v6, hlen - l4 + seg);
		s = net_csum_add(s, tcp, hlen - l4 + seg);
		put16(tcp + TCP_CSUM_OFF, ~net_csum_fold(s));

		if (emit(arg, scratch, hlen + seg))
			break;
		n++;
		if (payload == 0)
			break;
	}
	return n;
}
