/*
 * Building Ethernet frames by hand for the C tests that play the other
 * end of a pipe backend: big-endian stores, the Internet checksum, and
 * Ethernet and IPv4 headers.
 */
#ifndef LKL_TEST_FRAME_UTIL_H
#define LKL_TEST_FRAME_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline void put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v;
}

/* The ones' complement sum of len bytes, folded, on top of sum. */
static inline uint16_t csum(const uint8_t *p, size_t len, uint32_t sum)
{
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += p[i] << 8 | p[i + 1];
	if (len & 1)
		sum += p[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return sum;
}

/* An Ethernet header; returns its length. */
static inline size_t frame_eth(uint8_t *f, const uint8_t dst[6],
			       const uint8_t src[6], uint16_t type)
{
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	put16(f + 12, type);
	return 14;
}

/* An IPv4 header for proto with payload bytes after it; its length. */
static inline size_t frame_ipv4(uint8_t *p, const uint8_t src[4],
				const uint8_t dst[4], int proto,
				size_t payload)
{
	memset(p, 0, 20);
	p[0] = 0x45;
	put16(p + 2, 20 + payload);
	p[8] = 64;
	p[9] = proto;
	memcpy(p + 12, src, 4);
	memcpy(p + 16, dst, 4);
	put16(p + 10, ~csum(p, 20, 0));
	return 20;
}

#endif
