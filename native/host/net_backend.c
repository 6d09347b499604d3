/* What every backend shares: the public accessors. */
#include <lkl/netdev.h>

#include "net_backend.h"

uint64_t lkl_netdev_backend_offloads(const struct lkl_netdev_backend *be)
{
	return be->offloads;
}

void lkl_netdev_backend_free(struct lkl_netdev_backend *be)
{
	if (be && !be->in_use)
		be->ops->free(be);
}
