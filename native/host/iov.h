/*
 * Scatter-gather lists (struct iovec) as the device and its backends use
 * them: one set of helpers for the ring's buffers, the backends' frames
 * and the offload code.
 */
#ifndef LKL_HOST_IOV_H
#define LKL_HOST_IOV_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* Total bytes of iov. */
size_t iov_length(const struct iovec *iov, int cnt);

/* out = in without its first skip bytes; returns the entry count. */
int iov_skip(struct iovec *out, const struct iovec *in, int cnt, size_t skip);

/* Gather up to len bytes of iov into buf; returns bytes copied. */
size_t iov_to_buf(void *buf, size_t len, const struct iovec *iov, int cnt);

/* Scatter len bytes of buf into iov; returns bytes copied. */
size_t buf_to_iov(const struct iovec *iov, int cnt, const void *buf,
		  size_t len);

/* The byte at offset off of iov, or NULL past its end. */
uint8_t *iov_byte(const struct iovec *iov, int cnt, size_t off);

/*
 * out = [hdr (hdr_len bytes)] + iov, in an array of max entries.
 * iov_prepend (transmit: a frame is all or nothing) returns the entry
 * count or -EMSGSIZE if max is too small; iov_prepend_cut (receive)
 * takes as many entries of iov as fit and returns the count: a frame
 * longer than what was taken is then cut by the read, consumed and
 * reported as too long, never left behind to be read again.
 */
int iov_prepend(struct iovec *out, int max, const void *hdr, size_t hdr_len,
		const struct iovec *iov, int cnt);
int iov_prepend_cut(struct iovec *out, int max, void *hdr, size_t hdr_len,
		    const struct iovec *iov, int cnt);

#endif
