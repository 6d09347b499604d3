/*
 * Checking and finishing the offload state of received frames.
 *
 * A frame from a backend comes with a virtio-net header that may ask the
 * receiver to finish a checksum (NEEDS_CSUM) or say the frame is a TCP
 * super-frame (gso_type).  Before the kernel sees it, the device checks
 * that the header tells the truth about the frame and, where the driver
 * did not accept that offload, does the work itself.
 */
#ifndef LKL_HOST_NET_OFFLOAD_H
#define LKL_HOST_NET_OFFLOAD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "net_backend.h"

#define ETH_HDR_LEN	14
/* Enough of the frame to see every header the checks read. */
#define NET_PEEK_LEN	192

enum rx_verdict {
	RX_PASS,	/* hand it over as it is */
	RX_SW_CSUM,	/* finish the checksum, then hand it over */
	RX_SW_GSO,	/* cut it into MSS-sized frames first */
	RX_MALFORMED,	/* drop and count */
};

/*
 * Judge a frame of frame_len bytes whose first bytes are in head
 * (head_len = min(frame_len, NET_PEEK_LEN)), for a driver that accepted
 * the features in features.  May clear header hints the driver did not
 * ask for (DATA_VALID without GUEST_CSUM).
 */
enum rx_verdict net_rx_check(vnet_hdr_t *hdr, const uint8_t *head,
			     size_t head_len, size_t frame_len,
			     uint64_t features);

/*
 * Finish a NEEDS_CSUM checksum of a frame spread over iov, in place,
 * and clear the flag.
 */
void net_csum_finish(vnet_hdr_t *hdr, const struct iovec *iov, int iovcnt,
		     size_t frame_len);

/*
 * Cut the TCP super-frame in frame (checked by net_rx_check) into
 * frames of at most gso_size payload bytes with complete checksums,
 * built in scratch (scratch_len >= headers + gso_size), and pass each
 * to emit.  Stops at the first emit that fails; returns the number of
 * frames emitted.
 */
int net_gso_segment(const vnet_hdr_t *hdr, const uint8_t *frame,
		    size_t frame_len, uint8_t *scratch, size_t scratch_len,
		    int (*emit)(void *arg, const uint8_t *seg, size_t len),
		    void *arg);

/* Ones' complement sums (RFC 1071). */
uint32_t net_csum_add(uint32_t sum, const void *buf, size_t len);
uint16_t net_csum_fold(uint32_t sum);

#endif
