# C declarations of the lkl library (native/include/lkl/lkl.h) and of the
# exported kernel uapi headers (build/include/lkl/...): the kernel's own
# names with the lkl_/LKL_ prefix.

cdef extern from "lkl/lkl.h" nogil:
    long lkl_syscall(long nr, long *params)
    int lkl_is_running()
    const char *lkl_strerror(int err)
    int lkl_host_set_pin_cpu(int cpu)

cdef extern from "lkl/asm/unistd.h":
    enum:
        LKL__NR_read
        LKL__NR_write
        LKL__NR_close
        LKL__NR_openat
        LKL__NR_getdents64
        LKL__NR_getpid
        LKL__NR_uname
        LKL__NR_fcntl
        LKL__NR_ioctl
        LKL__NR_ppoll
        LKL__NR_dup
        LKL__NR_socket
        LKL__NR_socketpair
        LKL__NR_bind
        LKL__NR_listen
        LKL__NR_accept4
        LKL__NR_connect
        LKL__NR_getsockname
        LKL__NR_getpeername
        LKL__NR_sendto
        LKL__NR_recvfrom
        LKL__NR_setsockopt
        LKL__NR_getsockopt
        LKL__NR_shutdown
        LKL__NR_sendmsg
        LKL__NR_recvmsg
        LKL__NR_syscalls

cdef extern from "lkl/asm-generic/errno.h":
    enum:
        LKL_EAGAIN
        LKL_EINTR
        LKL_EINPROGRESS
        LKL_ENODEV
        LKL_EBADF
        LKL_EINVAL
        LKL_EISCONN
        LKL_EALREADY

cdef extern from "lkl/linux/fcntl.h":
    enum:
        LKL_F_GETFL
        LKL_F_SETFL
        LKL_F_DUPFD_CLOEXEC
        LKL_O_NONBLOCK

cdef extern from "lkl/asm-generic/poll.h":
    enum:
        LKL_POLLIN
        LKL_POLLOUT
        LKL_POLLPRI
        LKL_POLLERR
        LKL_POLLHUP
        LKL_POLLNVAL
        LKL_POLLRDHUP

    struct lkl_pollfd:
        int fd
        short events
        short revents

cdef extern from "lkl/linux/time_types.h":
    struct lkl__kernel_timespec:
        long long tv_sec
        long long tv_nsec

cdef extern from "lkl/linux/socket_abi.h":
    enum:
        LKL_AF_UNSPEC
        LKL_AF_UNIX
        LKL_AF_INET
        LKL_AF_INET6
        LKL_SOCK_STREAM
        LKL_SOCK_DGRAM
        LKL_SOCK_NONBLOCK
        LKL_SOCK_CLOEXEC
        LKL_MSG_CTRUNC
        LKL_MSG_PEEK
        LKL_MSG_DONTWAIT
        LKL_MSG_WAITALL

    struct lkl_iovec:
        void *iov_base
        size_t iov_len

    struct lkl_user_msghdr:
        void *msg_name
        int msg_namelen
        lkl_iovec *msg_iov
        size_t msg_iovlen
        void *msg_control
        size_t msg_controllen
        unsigned int msg_flags

    struct lkl_cmsghdr:
        size_t cmsg_len
        int cmsg_level
        int cmsg_type

cdef extern from "lkl/asm-generic/socket.h":
    enum:
        LKL_SOL_SOCKET
        LKL_SO_ERROR
        LKL_SO_TYPE

cdef extern from "lkl/linux/in.h":
    struct lkl_in_addr:
        unsigned int s_addr

    struct lkl_sockaddr_in:
        unsigned short sin_family
        unsigned short sin_port
        lkl_in_addr sin_addr

cdef extern from "lkl/linux/in6.h":
    struct lkl_in6_addr:
        unsigned char s6_addr[16]

    struct lkl_sockaddr_in6:
        unsigned short sin6_family
        unsigned short sin6_port
        unsigned int sin6_flowinfo
        lkl_in6_addr sin6_addr
        unsigned int sin6_scope_id

cdef extern from "lkl/linux/un.h":
    enum:
        LKL_UNIX_PATH_MAX

    struct lkl_sockaddr_un:
        unsigned short sun_family
        char sun_path[108]
