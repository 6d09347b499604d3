// SPDX-License-Identifier: GPL-2.0
/*
 * MSG_ZEROCOPY for buffers the kernel has no struct page for.
 *
 * Only the kernel's RAM has struct pages (FLATMEM over one host
 * allocation).  A buffer mapped inside the kernel (mmap in a task of
 * init's mm) has a VMA in kernel RAM, so the nommu GUP takes real page
 * references and TCP sends it without a copy.  Any other host memory has
 * no VMA: GUP fails and tcp_sendmsg would return -EFAULT where Linux
 * succeeds.
 *
 * For such a send, TCP's sendmsg is entered with the caller-supplied
 * ubuf interface the kernel offers (msg->msg_ubuf, msg->sg_from_iter):
 * the ubuf is the socket's ordinary MSG_ZEROCOPY notification
 * (msg_zerocopy_realloc, so ids, range coalescing and the error queue
 * are the kernel's own), and the fill callback copies the bytes into
 * fresh kernel pages laid out frag for frag as GUP would have pinned
 * them.  The notification's zerocopy bit is cleared, so the completion
 * carries SO_EE_CODE_ZEROCOPY_COPIED: true, the bytes were copied, and
 * the caller's buffer is not referenced once sendmsg returns.
 *
 * A buffer with pages (mapped inside the kernel) goes the same way with
 * a fill that references its pages (get_page, one VMA lookup per
 * segment): the kernel's zerocopy semantics, without the nommu GUP's
 * find_vma for every page.  Fast Open and not-yet-connected sockets keep
 * the kernel's own path, which reaches the same pages through GUP.
 *
 * UDP datagrams from host memory take the copying fill the same way
 * (the kernel's own UDP path already works for buffers with pages).
 *
 * The hooks are the sendmsg of tcp_prot, tcpv6_prot, udp_prot and
 * udpv6_prot, set once at boot; every other send goes straight to the
 * protocol's own sendmsg.  What the kernel references and until when is
 * the kernel's business as usual: frags hold page references, the ubuf
 * is released when the last skb sharing it is freed (after the ACK, and
 * after the driver's TX completion), and that queues the notification.
 */
#include <linux/init.h>
#include <linux/err.h>
#include <linux/mm.h>
#include <linux/mman.h>
#include <linux/skbuff.h>
#include <linux/socket.h>
#include <linux/uio.h>
#include <net/sock.h>
#include <net/tcp.h>
#include <net/transp_v6.h>
#include <net/udp.h>
#include <asm/lkl_api.h>
#include <asm/unistd.h>

/*
 * The current segment's length.  iter_iov_len() is wrong for ITER_UBUF
 * once advanced (its iov_len overlays the shrinking count).
 */
static size_t seg_left(const struct iov_iter *from)
{
	if (iter_is_ubuf(from))
		return iov_iter_count(from);
	return iter_iov_len(from);
}

/* Is [addr, addr + len) inside one VMA of kernel RAM (pages GUP can take)? */
static bool range_has_pages(struct mm_struct *mm, unsigned long addr,
			    size_t len)
{
	struct vm_area_struct *vma;

	if (!len)
		return true;
	if (!virt_addr_valid(addr) || !virt_addr_valid(addr + len - 1))
		return false;
	vma = find_vma(mm, addr);
	return vma && vma->vm_start <= addr && addr + len <= vma->vm_end;
}

static bool iter_has_pages(const struct iov_iter *from)
{
	const struct iovec *iov = iter_iov(from);
	size_t skip = from->iov_offset, left = iov_iter_count(from);
	struct mm_struct *mm = current->mm;
	unsigned long i, nr = iter_is_ubuf(from) ? 1 : from->nr_segs;
	bool ok = true;

	if (!mm)
		return false;
	mmap_read_lock(mm);
	for (i = 0; i < nr && left && ok; i++, skip = 0) {
		size_t len = iter_is_ubuf(from) ? left :
			     min(iov[i].iov_len - skip, left);

		ok = range_has_pages(mm, (unsigned long)iov[i].iov_base + skip,
				     len);
		left -= len;
	}
	mmap_read_unlock(mm);
	return ok;
}

/*
 * msg->sg_from_iter for host memory: copy into new pages, one frag per
 * source page piece, merging only pieces contiguous in one source page
 * (what zerocopy_fill_skb_from_iter makes of order-0 user pages).
 */
static int copy_fill_skb_from_iter(struct sk_buff *skb, struct iov_iter *from,
				   size_t length)
{
	struct skb_shared_info *shinfo = skb_shinfo(skb);
	unsigned long prev_end = 0;

	while (length && iov_iter_count(from)) {
		unsigned long addr = (unsigned long)iter_iov_addr(from);
		size_t off = offset_in_page(addr);
		size_t n = min3(length, seg_left(from), PAGE_SIZE - off);
		int frag = shinfo->nr_frags;
		bool merge = frag && addr == prev_end && off != 0;
		struct page *page;

		if (!n) {		/* an empty iovec element */
			iov_iter_advance(from, 0);
			continue;
		}
		if (merge) {
			page = skb_frag_page(&shinfo->frags[frag - 1]);
		} else {
			if (frag == MAX_SKB_FRAGS)
				return -EMSGSIZE;
			page = alloc_page(GFP_KERNEL);
			if (!page)
				return -ENOMEM;
		}
		if (copy_page_from_iter(page, off, n, from) != n) {
			if (!merge)
				put_page(page);
			return -EFAULT;
		}
		if (merge) {
			skb_frag_size_add(&shinfo->frags[frag - 1], n);
		} else {
			skb_fill_page_desc(skb, frag, page, off, n);
			skb->truesize += PAGE_SIZE;
		}
		skb->data_len += n;
		skb->len += n;
		length -= n;
		prev_end = addr + n;
	}
	return 0;
}

/*
 * msg->sg_from_iter for memory mapped inside the kernel: reference its
 * pages, as the nommu GUP would, but with one VMA lookup per segment
 * instead of one per page (find_vma is most of GUP's cost here).
 */
static int ref_fill_skb_from_iter(struct sk_buff *skb, struct iov_iter *from,
				  size_t length)
{
	struct skb_shared_info *shinfo = skb_shinfo(skb);
	struct mm_struct *mm = current->mm;
	struct vm_area_struct *vma = NULL;
	int err = 0;

	mmap_read_lock(mm);
	while (length && iov_iter_count(from)) {
		unsigned long addr = (unsigned long)iter_iov_addr(from);
		size_t off = offset_in_page(addr);
		size_t n = min3(length, seg_left(from), PAGE_SIZE - off);
		int frag = shinfo->nr_frags;
		skb_frag_t *last = frag ? &shinfo->frags[frag - 1] : NULL;
		struct page *page;

		if (!n) {		/* an empty iovec element */
			iov_iter_advance(from, 0);
			continue;
		}
		if (!vma || addr < vma->vm_start || addr + n > vma->vm_end) {
			vma = find_vma(mm, addr);
			if (!vma || addr < vma->vm_start ||
			    addr + n > vma->vm_end || !virt_addr_valid(addr) ||
			    (vma->vm_flags & (VM_IO | VM_PFNMAP)) ||
			    !(vma->vm_flags & VM_READ)) {
				err = -EFAULT;
				break;
			}
		}
		page = virt_to_page((void *)addr);
		if (last && skb_frag_page(last) == page &&
		    skb_frag_off(last) + skb_frag_size(last) == off) {
			skb_frag_size_add(last, n);
		} else {
			if (frag == MAX_SKB_FRAGS) {
				err = -EMSGSIZE;
				break;
			}
			get_page(page);		/* dropped when the skb is freed */
			skb_fill_page_desc(skb, frag, page, off, n);
			skb->truesize += PAGE_SIZE;
		}
		skb->data_len += n;
		skb->len += n;
		length -= n;
		iov_iter_advance(from, n);
	}
	mmap_read_unlock(mm);
	return err;
}

static int ubuf_sendmsg(struct sock *sk, struct msghdr *msg, size_t size,
			bool referenced)
{
	struct ubuf_info *uarg;
	int ret;

	lock_sock(sk);
	uarg = msg_zerocopy_realloc(sk, size,
				    skb_zcopy(tcp_write_queue_tail(sk)));
	if (!uarg) {
		release_sock(sk);
		return -ENOBUFS;
	}
	/* Without SG, TCP copies whatever the fill would have done. */
	if (!referenced || !(sk->sk_route_caps & NETIF_F_SG))
		uarg_to_msgzc(uarg)->zerocopy = 0;	/* reported as COPIED */
	msg->msg_ubuf = uarg;
	msg->sg_from_iter = referenced ? ref_fill_skb_from_iter :
					 copy_fill_skb_from_iter;
	ret = tcp_sendmsg_locked(sk, msg, size);
	msg->msg_ubuf = NULL;
	msg->sg_from_iter = NULL;
	/* tcp_sendmsg_locked leaves a caller's ubuf to the caller */
	if (ret < 0)
		msg_zerocopy_put_abort(uarg, true);
	else
		net_zcopy_put(uarg);
	release_sock(sk);
	return ret;
}

static int lkl_tcp_sendmsg(struct sock *sk, struct msghdr *msg, size_t size)
{
	bool referenced;

	if (!(msg->msg_flags & MSG_ZEROCOPY) || !size || msg->msg_ubuf ||
	    !sock_flag(sk, SOCK_ZEROCOPY) || !user_backed_iter(&msg->msg_iter))
		return tcp_sendmsg(sk, msg, size);
	referenced = iter_has_pages(&msg->msg_iter);
	/* Fast Open and connecting sockets: the kernel's own path (GUP) */
	if (referenced && ((msg->msg_flags & MSG_FASTOPEN) ||
			   !((1 << sk->sk_state) &
			     (TCPF_ESTABLISHED | TCPF_CLOSE_WAIT))))
		return tcp_sendmsg(sk, msg, size);
	return ubuf_sendmsg(sk, msg, size, referenced);
}

/*
 * UDP from host memory, one datagram at a time (corked sends keep the
 * kernel's path): the same caller-supplied ubuf and copying fill.
 */
static int udp_zerocopy_sendmsg(struct sock *sk, struct msghdr *msg,
				size_t size,
				int (*send)(struct sock *, struct msghdr *, size_t))
{
	struct ubuf_info *uarg;
	int ret;

	if (!(msg->msg_flags & MSG_ZEROCOPY) || !size || msg->msg_ubuf ||
	    !sock_flag(sk, SOCK_ZEROCOPY) || !user_backed_iter(&msg->msg_iter) ||
	    (msg->msg_flags & MSG_MORE) || udp_test_bit(CORK, sk) ||
	    READ_ONCE(udp_sk(sk)->pending) || iter_has_pages(&msg->msg_iter))
		return send(sk, msg, size);
	uarg = msg_zerocopy_realloc(sk, size, NULL);
	if (!uarg)
		return -ENOBUFS;
	uarg_to_msgzc(uarg)->zerocopy = 0;	/* reported as COPIED */
	msg->msg_ubuf = uarg;
	msg->sg_from_iter = copy_fill_skb_from_iter;
	ret = send(sk, msg, size);
	msg->msg_ubuf = NULL;
	msg->sg_from_iter = NULL;
	if (ret < 0)
		msg_zerocopy_put_abort(uarg, true);
	else
		net_zcopy_put(uarg);
	return ret;
}

static int lkl_udp_sendmsg(struct sock *sk, struct msghdr *msg, size_t size)
{
	return udp_zerocopy_sendmsg(sk, msg, size, udp_sendmsg);
}

#if IS_ENABLED(CONFIG_IPV6)
/* net/ipv6/udp_impl.h, which is not on the include path */
int udpv6_sendmsg(struct sock *sk, struct msghdr *msg, size_t len);

static int lkl_udpv6_sendmsg(struct sock *sk, struct msghdr *msg, size_t size)
{
	return udp_zerocopy_sendmsg(sk, msg, size, udpv6_sendmsg);
}
#endif

/*
 * Kernel-visible memory for senders in C: an anonymous mapping made by
 * the calling thread's task (init's mm), so kernel RAM with a VMA whose
 * pages MSG_ZEROCOPY references instead of copying.
 */
long lkl_zerocopy_alloc(unsigned long len, void **buf)
{
	long params[6] = { 0, (long)len, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0 };
	long addr;

	if (!buf || !len)
		return -EINVAL;
	addr = lkl_syscall(__NR_mmap, params);
	if (IS_ERR_VALUE(addr))
		return addr;
	*buf = (void *)addr;
	return 0;
}

/* Unmap it; pages still sent from stay until their completion. */
long lkl_zerocopy_free(void *buf, unsigned long len)
{
	long params[6] = { (long)buf, (long)len };

	return lkl_syscall(__NR_munmap, params);
}

static int __init zerocopy_init(void)
{
	tcp_prot.sendmsg = lkl_tcp_sendmsg;
	udp_prot.sendmsg = lkl_udp_sendmsg;
#if IS_ENABLED(CONFIG_IPV6)
	tcpv6_prot.sendmsg = lkl_tcp_sendmsg;
	udpv6_prot.sendmsg = lkl_udpv6_sendmsg;
#endif
	return 0;
}
late_initcall(zerocopy_init);
