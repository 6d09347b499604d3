/* What every backend shares: iovec helpers and the public free. */
#include <errno.h>
#include <string.h>

#include <lkl/netdev.h>

#include "net_backend.h"

size_t net_iov_length(const struct iovec *iov, int iovcnt)
{
	size_t len = 0;
	int i;

	for (i = 0; i < iovcnt; i++)
		len += iov[i].iov_len;
	return len;
}

int net_iov_prepend(struct iovec *out, int max, const void *hdr,
		    size_t hdr_len, const struct iovec *iov, int iovcnt)
{
	if (iovcnt + 1 > max)
		return -EMSGSIZE;
	out[0].iov_base = (void *)hdr;
	out[0].iov_len = hdr_len;
	memcpy(out + 1, iov, iovcnt * sizeof(*iov));
	return iovcnt + 1;
}

uint64_t lkl_netdev_backend_offloads(const struct lkl_netdev_backend *be)
{
	return be->offloads;
}

void lkl_netdev_backend_free(struct lkl_netdev_backend *be)
{
	if (be && !be->in_use)
		be->ops->free(be);
}
