// SPDX-License-Identifier: GPL-2.0
/*
 * Zero-copy TCP receive: the application reads the skbs' data in place.
 *
 * Linux's TCP_ZEROCOPY_RECEIVE remaps pages into the reader's address
 * space, which needs an MMU.  Here kernel memory is host memory (FLATMEM
 * over one host allocation, no highmem), so skb->data and
 * page_address(frag page) + offset already are addresses the caller can
 * read.  Two lkl syscalls, numbered in the range asm-generic leaves to
 * architectures (uapi/asm/unistd.h):
 *
 * lkl_recv_zerocopy(fd, segs, len, flags, nsegs, token) takes up to len
 *   bytes off the socket's receive queue as tcp_recvmsg would (socket
 *   lock, copied_seq, urgent data, FIN, errors, SO_RCVTIMEO and
 *   SO_RCVLOWAT, receive-space tuning; the ACK of tcp_cleanup_rbuf
 *   comes with the release, when the window it carries is free), but
 *   instead of copying it fills segs[] with (address, length) pairs:
 *   one per linear part, page frag and frag_list member (adjacent pieces
 *   merged), at most nsegs.  The skbs are held under a token.
 *
 * lkl_zerocopy_release(token) frees them.
 *
 * What is held: an skb read to its end is unlinked from the receive
 * queue and kept as it is, still owned by the socket (skb->sk,
 * sock_rfree): its truesize stays in sk_rmem_alloc and the socket's
 * memory accounting, so held data shrinks the advertised window (the
 * sender stalls when the application holds a receive buffer's worth).
 * An skb read only in part stays queued for the next read, and the
 * token holds a clone of it (the clone shares the data; it is not
 * charged: the original is, until it is read).  Every batch holds a
 * reference on the socket, so its release (under lock_sock, which the
 * socket's memory accounting needs; then tcp_cleanup_rbuf for the
 * window update) is safe after close: the socket's final destructor runs
 * after the last release and finds its memory returned.
 *
 * Tokens index an xarray (ids allocated cyclically from 1), so an
 * unknown or already released token is -EINVAL and never dereferenced.
 */
#include <linux/errno.h>
#include <linux/net.h>
#include <linux/sched/signal.h>
#include <linux/skbuff.h>
#include <linux/slab.h>
#include <linux/syscalls.h>
#include <linux/uaccess.h>
#include <linux/xarray.h>
#include <net/sock.h>
#include <net/tcp.h>
#include <net/transp_v6.h>
#include <asm/lkl_api.h>
#include <asm/unistd.h>

/* How many batches may be held at once (each holds its skbs). */
#define ZC_MAX_BATCHES	65536

struct zc_batch {
	struct sock *sk;		/* referenced */
	unsigned int nr_skbs;
	unsigned int nr_segs;
	unsigned int max_segs;
	unsigned int bytes;		/* taken off the queue */
	struct lkl_zc_seg *segs;	/* max_segs entries, after skbs[] */
	struct sk_buff *skbs[];		/* max_segs entries */
};

static DEFINE_XARRAY_ALLOC1(zc_tokens);
static u32 zc_next_token;
static atomic_t zc_batches = ATOMIC_INIT(0);

/* Add [addr, addr + len) to b, merged with the last segment if adjacent. */
static bool zc_add(struct zc_batch *b, const void *addr, int len)
{
	struct lkl_zc_seg *last = b->nr_segs ? &b->segs[b->nr_segs - 1] : NULL;

	if (last && last->addr + last->len == (unsigned long)addr) {
		last->len += len;
		return true;
	}
	if (b->nr_segs == b->max_segs)
		return false;
	b->segs[b->nr_segs].addr = (unsigned long)addr;
	b->segs[b->nr_segs].len = len;
	b->nr_segs++;
	return true;
}

/*
 * Segments for bytes [offset, offset + len) of skb (as __skb_datagram_iter
 * walks them); returns how many bytes fitted in b's segments.
 */
static int zc_map(struct zc_batch *b, const struct sk_buff *skb, int offset,
		  int len)
{
	int start = skb_headlen(skb);
	struct sk_buff *frag_iter;
	int i, copy, done = 0;

	copy = start - offset;
	if (copy > 0) {
		copy = min(copy, len);
		if (!zc_add(b, skb->data + offset, copy))
			return done;
		done += copy;
		offset += copy;
		len -= copy;
		if (!len)
			return done;
	}

	for (i = 0; i < skb_shinfo(skb)->nr_frags; i++) {
		const skb_frag_t *frag = &skb_shinfo(skb)->frags[i];
		int end = start + skb_frag_size(frag);

		copy = end - offset;
		if (copy > 0) {
			copy = min(copy, len);
			if (!zc_add(b, skb_frag_address(frag) + offset - start,
				    copy))
				return done;
			done += copy;
			offset += copy;
			len -= copy;
			if (!len)
				return done;
		}
		start = end;
	}

	skb_walk_frags(skb, frag_iter) {
		int end = start + frag_iter->len;

		copy = end - offset;
		if (copy > 0) {
			int n;

			copy = min(copy, len);
			n = zc_map(b, frag_iter, offset - start, copy);
			done += n;
			offset += n;
			len -= n;
			if (n < copy || !len)
				return done;
		}
		start = end;
	}
	return done;
}

/*
 * Hold bytes [offset, offset + used) of skb in b.  Returns the bytes
 * held (fewer when b's segments run out, 0 when none fit), or -ENOMEM.
 * An skb read to its end is unlinked from the receive queue and held
 * itself; otherwise a clone is held.
 */
static int zc_hold(struct sock *sk, struct zc_batch *b, struct sk_buff *skb,
		   u32 offset, u32 used)
{
	unsigned int segs = b->nr_segs;
	struct lkl_zc_seg last = segs ? b->segs[segs - 1] : (struct lkl_zc_seg){};
	struct sk_buff *held = skb;
	int n;

	if (b->nr_skbs == b->max_segs)
		return 0;
	n = zc_map(b, skb, offset, used);
	if (n <= 0)
		return n;
	if (offset + n < skb->len) {
		held = skb_clone(skb, GFP_KERNEL);
		if (!held) {
			/* Undo: the bytes stay queued. */
			b->nr_segs = segs;
			if (segs)
				b->segs[segs - 1] = last;
			return -ENOMEM;
		}
	} else {
		__skb_unlink(skb, &sk->sk_receive_queue);
	}
	b->skbs[b->nr_skbs++] = held;
	return n;
}

/* tcp_recvmsg_locked without the copy, the peek, repair and timestamps. */
static int zc_recv_locked(struct sock *sk, struct zc_batch *b, size_t len,
			  int flags)
{
	struct tcp_sock *tp = tcp_sk(sk);
	u32 *seq = &tp->copied_seq;
	struct sk_buff *skb, *last;
	int copied = 0, target, err;
	long timeo;

	if (sk->sk_state == TCP_LISTEN)
		return -ENOTCONN;
	if (unlikely(tp->repair))
		return -EPERM;
	timeo = sock_rcvtimeo(sk, flags & MSG_DONTWAIT);
	target = sock_rcvlowat(sk, 0, len);

	do {
		u32 offset, used;
		int n;

		/* At urgent data: stop if we read anything or a signal is pending. */
		if (unlikely(tp->urg_data) && tp->urg_seq == *seq) {
			if (copied)
				break;
			if (signal_pending(current)) {
				copied = timeo ? sock_intr_errno(timeo) : -EAGAIN;
				break;
			}
		}

		last = skb_peek_tail(&sk->sk_receive_queue);
		skb_queue_walk(&sk->sk_receive_queue, skb) {
			last = skb;
			if (WARN_ON_ONCE(before(*seq, TCP_SKB_CB(skb)->seq)))
				break;
			offset = *seq - TCP_SKB_CB(skb)->seq;
			if (unlikely(TCP_SKB_CB(skb)->tcp_flags & TCPHDR_SYN))
				offset--;
			if (offset < skb->len)
				goto found_ok_skb;
			if (TCP_SKB_CB(skb)->tcp_flags & TCPHDR_FIN)
				goto found_fin_ok;
			WARN_ON_ONCE(1);
		}

		if (copied >= target && !READ_ONCE(sk->sk_backlog.tail))
			break;

		if (copied) {
			if (!timeo || sk->sk_err || sk->sk_state == TCP_CLOSE ||
			    (sk->sk_shutdown & RCV_SHUTDOWN) ||
			    signal_pending(current))
				break;
		} else {
			if (sock_flag(sk, SOCK_DONE))
				break;
			if (sk->sk_err) {
				copied = sock_error(sk);
				break;
			}
			if (sk->sk_shutdown & RCV_SHUTDOWN)
				break;
			if (sk->sk_state == TCP_CLOSE) {
				copied = -ENOTCONN;
				break;
			}
			if (!timeo) {
				copied = -EAGAIN;
				break;
			}
			if (signal_pending(current)) {
				copied = sock_intr_errno(timeo);
				break;
			}
		}

		if (copied >= target) {
			__sk_flush_backlog(sk);
		} else {
			tcp_cleanup_rbuf(sk, copied);
			err = sk_wait_data(sk, &timeo, last);
			if (err < 0)
				return copied ? : err;
		}
		continue;

found_ok_skb:
		used = skb->len - offset;
		if (len < used)
			used = len;

		/* Urgent data: skip the byte unless inline, stop before it. */
		if (unlikely(tp->urg_data)) {
			u32 urg_offset = tp->urg_seq - *seq;

			if (urg_offset < used) {
				if (!urg_offset) {
					if (!sock_flag(sk, SOCK_URGINLINE)) {
						WRITE_ONCE(*seq, *seq + 1);
						offset++;
						used--;
						if (!used)
							goto skip_copy;
					}
				} else {
					used = urg_offset;
				}
			}
		}

		if (!skb_frags_readable(skb)) {
			if (!copied)
				copied = -EFAULT;
			break;
		}
		n = zc_hold(sk, b, skb, offset, used);
		if (n <= 0) {
			if (!copied)
				copied = n ? n : -ENOBUFS;
			break;
		}
		/* zc_hold may have unlinked skb: only its fields are used below. */
		WRITE_ONCE(*seq, *seq + n);
		copied += n;
		len -= n;
		sk_peek_offset_bwd(sk, n);
		tcp_rcv_space_adjust(sk);
		if (n < used)
			break;		/* out of segments */

skip_copy:
		if (unlikely(tp->urg_data) && after(tp->copied_seq, tp->urg_seq)) {
			WRITE_ONCE(tp->urg_data, 0);
			tcp_fast_path_check(sk);
		}
		if (used + offset < skb->len)
			continue;
		if (TCP_SKB_CB(skb)->tcp_flags & TCPHDR_FIN) {
			/* Held whole (unlinked) above, or read earlier. */
			WRITE_ONCE(*seq, *seq + 1);
			if (b->nr_skbs && b->skbs[b->nr_skbs - 1] == skb)
				break;
			goto eat_fin;
		}
		/* A byte skipped at the end: nothing held, so eat it here. */
		if (!b->nr_skbs || b->skbs[b->nr_skbs - 1] != skb) {
			__skb_unlink(skb, &sk->sk_receive_queue);
			consume_skb(skb);
		}
		continue;

found_fin_ok:
		WRITE_ONCE(*seq, *seq + 1);
eat_fin:
		__skb_unlink(skb, &sk->sk_receive_queue);
		consume_skb(skb);
		break;
	} while (len > 0);

	/*
	 * Data ACKs carry the window.  Sent now it would count the skbs
	 * just taken as still occupied, so while any is held the ACK waits
	 * for the release (or the delayed-ACK timer, if that comes first).
	 */
	if (!b->nr_skbs)
		tcp_cleanup_rbuf(sk, copied);
	return copied;
}

static bool sk_is_lkl_tcp(const struct sock *sk)
{
	if (sk->sk_type != SOCK_STREAM || sk->sk_protocol != IPPROTO_TCP)
		return false;
#if IS_ENABLED(CONFIG_IPV6)
	if (sk->sk_prot == &tcpv6_prot)
		return true;
#endif
	return sk->sk_prot == &tcp_prot;
}

static void zc_free(struct zc_batch *b)
{
	struct sock *sk = b->sk;
	unsigned int i;

	lock_sock(sk);
	for (i = 0; i < b->nr_skbs; i++)
		consume_skb(b->skbs[i]);	/* sock_rfree: the charge */
	/*
	 * The read's ACK, now that its window is free (zc_recv_locked left
	 * it to the release): what tcp_recvmsg's tcp_cleanup_rbuf sends
	 * after it freed the skbs.
	 */
	if (!sock_flag(sk, SOCK_DEAD) &&
	    ((1 << sk->sk_state) &
	     (TCPF_ESTABLISHED | TCPF_FIN_WAIT1 | TCPF_FIN_WAIT2)))
		tcp_cleanup_rbuf(sk, b->bytes);
	release_sock(sk);
	sock_put(sk);
	kfree(b);
}

SYSCALL_DEFINE6(lkl_recv_zerocopy, int, fd, struct lkl_zc_seg __user *, usegs,
		size_t, len, unsigned int, flags, unsigned int, nsegs,
		unsigned long __user *, utoken)
{
	struct zc_batch *b;
	struct socket *sock;
	struct sock *sk;
	u32 id;
	int err;
	long ret;

	if (flags & ~MSG_DONTWAIT)
		return -EINVAL;
	if (!len || !nsegs || nsegs > LKL_ZC_MAX_SEGS)
		return -EINVAL;
	len = min_t(size_t, len, INT_MAX);
	/* Fault now, before any byte is taken off the queue. */
	if (clear_user(usegs, nsegs * sizeof(*usegs)) ||
	    put_user(0UL, utoken))
		return -EFAULT;

	sock = sockfd_lookup(fd, &err);
	if (!sock)
		return err;
	sk = sock->sk;
	if (!sk || !sk_is_lkl_tcp(sk)) {
		ret = -EINVAL;
		goto out_put;
	}
	if (sock->file->f_flags & O_NONBLOCK)
		flags |= MSG_DONTWAIT;

	if (atomic_inc_return(&zc_batches) > ZC_MAX_BATCHES) {
		ret = -ENOBUFS;
		goto out_count;
	}
	b = kmalloc(struct_size(b, skbs, nsegs) + nsegs * sizeof(*b->segs),
		    GFP_KERNEL);
	if (!b) {
		ret = -ENOMEM;
		goto out_count;
	}
	b->nr_skbs = 0;
	b->nr_segs = 0;
	b->bytes = 0;
	b->max_segs = nsegs;
	b->segs = (struct lkl_zc_seg *)&b->skbs[nsegs];
	/* Reserve the id (a NULL entry: releasing it finds nothing). */
	ret = xa_alloc_cyclic(&zc_tokens, &id, NULL, XA_LIMIT(1, INT_MAX),
			      &zc_next_token, GFP_KERNEL);
	if (ret < 0)
		goto out_free;

	lock_sock(sk);
	ret = zc_recv_locked(sk, b, len, flags);
	release_sock(sk);
	if (ret > 0)
		b->bytes = ret;

	if (!b->nr_skbs) {
		/* Nothing held (an error, EOF, or only skipped bytes). */
		xa_erase(&zc_tokens, id);
		goto out_free;
	}
	sock_hold(sk);
	b->sk = sk;
	/* Written once above, so only a concurrent unmap makes these fault. */
	if (copy_to_user(usegs, b->segs, b->nr_segs * sizeof(*usegs)) ||
	    put_user((unsigned long)id, utoken)) {
		xa_erase(&zc_tokens, id);
		zc_free(b);
		ret = -EFAULT;
		goto out_count;
	}
	xa_store(&zc_tokens, id, b, GFP_KERNEL);	/* reserved: no allocation */
	sockfd_put(sock);
	return ret;

out_free:
	kfree(b);
out_count:
	atomic_dec(&zc_batches);
out_put:
	sockfd_put(sock);
	return ret;
}

SYSCALL_DEFINE1(lkl_zerocopy_release, unsigned long, token)
{
	struct zc_batch *b;

	if (!token || token > INT_MAX)
		return -EINVAL;
	b = xa_erase(&zc_tokens, token);
	if (!b)
		return -EINVAL;
	zc_free(b);
	atomic_dec(&zc_batches);
	return 0;
}

long lkl_recv_zerocopy(int fd, struct lkl_zc_seg *segs, int nsegs,
		       unsigned long len, int flags, unsigned long *token)
{
	long params[6] = { fd, (long)segs, (long)len, flags, nsegs,
			   (long)token };

	if (nsegs <= 0)
		return -EINVAL;
	return lkl_syscall(__NR_lkl_recv_zerocopy, params);
}

long lkl_zerocopy_release(unsigned long token)
{
	long params[6] = { (long)token };

	return lkl_syscall(__NR_lkl_zerocopy_release, params);
}
