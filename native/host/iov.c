/* Scatter-gather list helpers: see iov.h. */
#include <errno.h>
#include <string.h>

#include "iov.h"

size_t iov_length(const struct iovec *iov, int cnt)
{
	size_t len = 0;
	int i;

	for (i = 0; i < cnt; i++)
		len += iov[i].iov_len;
	return len;
}

int iov_skip(struct iovec *out, const struct iovec *in, int cnt, size_t skip)
{
	int i, n = 0;

	for (i = 0; i < cnt; i++) {
		if (skip >= in[i].iov_len) {
			skip -= in[i].iov_len;
			continue;
		}
		out[n].iov_base = (uint8_t *)in[i].iov_base + skip;
		out[n].iov_len = in[i].iov_len - skip;
		skip = 0;
		n++;
	}
	return n;
}

size_t iov_to_buf(void *buf, size_t len, const struct iovec *iov, int cnt)
{
	size_t done = 0;
	int i;

	for (i = 0; i < cnt && done < len; i++) {
		size_t n = iov[i].iov_len < len - done ? iov[i].iov_len :
							 len - done;

		memcpy((uint8_t *)buf + done, iov[i].iov_base, n);
		done += n;
	}
	return done;
}

size_t buf_to_iov(const struct iovec *iov, int cnt, const void *buf,
		  size_t len)
{
	size_t done = 0;
	int i;

	for (i = 0; i < cnt && done < len; i++) {
		size_t n = iov[i].iov_len < len - done ? iov[i].iov_len :
							 len - done;

		memcpy(iov[i].iov_base, (const uint8_t *)buf + done, n);
		done += n;
	}
	return done;
}

uint8_t *iov_byte(const struct iovec *iov, int cnt, size_t off)
{
	int i;

	for (i = 0; i < cnt; i++) {
		if (off < iov[i].iov_len)
			return (uint8_t *)iov[i].iov_base + off;
		off -= iov[i].iov_len;
	}
	return NULL;
}

int iov_prepend(struct iovec *out, int max, const void *hdr, size_t hdr_len,
		const struct iovec *iov, int cnt)
{
	if (cnt + 1 > max)
		return -EMSGSIZE;
	out[0].iov_base = (void *)hdr;
	out[0].iov_len = hdr_len;
	memcpy(out + 1, iov, cnt * sizeof(*iov));
	return cnt + 1;
}

int iov_prepend_cut(struct iovec *out, int max, void *hdr, size_t hdr_len,
		    const struct iovec *iov, int cnt)
{
	return iov_prepend(out, max, hdr, hdr_len, iov,
			   cnt + 1 > max ? max - 1 : cnt);
}
