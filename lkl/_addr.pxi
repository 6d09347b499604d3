# Socket addresses, spelled as the standard library spells them:
# ("1.2.3.4", port), ("::1", port, flowinfo, scope_id), a path for AF_UNIX.
#
# Host names: only "", "localhost" and "<broadcast>" are understood; the
# kernel has no resolver and the host's would answer for another network
# stack, so any other name raises socket.gaierror (EAI_NONAME).

cdef extern from "<arpa/inet.h>" nogil:
    unsigned short htons(unsigned short)
    unsigned short ntohs(unsigned short)
    unsigned int htonl(unsigned int)
    unsigned int ntohl(unsigned int)

cdef extern from *:
    """
    #include <stddef.h>
    #define LKL_SUN_PATH_OFFSET offsetof(struct lkl_sockaddr_un, sun_path)
    """
    Py_ssize_t LKL_SUN_PATH_OFFSET

cdef extern from "<string.h>" nogil:
    size_t strnlen(const char *s, size_t maxlen)

# Large enough for any sockaddr (struct sockaddr_storage).
cdef enum:
    ADDR_MAX = 128


cdef object _no_name():
    return _hostsocket.gaierror(_hostsocket.EAI_NONAME, "Name or service not known")


cdef str _host_str(object host):
    if isinstance(host, str):
        return <str>host
    if isinstance(host, (bytes, bytearray)):
        try:
            return bytes(host).decode("ascii")
        except UnicodeDecodeError:
            raise _no_name() from None
    raise TypeError(f"str, bytes or bytearray expected, not {type(host).__name__}")


cdef bytes _inet4(object host):
    cdef str h = _host_str(host)
    if h == "":
        return b"\0\0\0\0"
    if h == "<broadcast>":
        return b"\xff\xff\xff\xff"
    if h.lower() == "localhost":
        return b"\x7f\0\0\x01"
    try:
        return _hostsocket.inet_pton(_hostsocket.AF_INET, h)
    except (OSError, ValueError):
        raise _no_name() from None


cdef bytes _inet6(str h):
    if h == "":
        return b"\0" * 16
    if h.lower() == "localhost":
        return b"\0" * 15 + b"\x01"
    try:
        return _hostsocket.inet_pton(_hostsocket.AF_INET6, h)
    except (OSError, ValueError):
        raise _no_name() from None


cdef int _port(object port, str what) except -1:
    if isinstance(port, bool) or not isinstance(port, int):
        # The standard library's wording.
        raise TypeError(f"'{type(port).__name__}' object cannot be interpreted as an integer")
    if not 0 <= port <= 65535:
        raise OverflowError(f"{what}(): port must be 0-65535.")
    return port


cdef Py_ssize_t _encode_addr(int family, object address, char *out, str what) except -1:
    """Write the kernel sockaddr for ``address`` into ``out`` (ADDR_MAX
    bytes); return its length."""
    cdef lkl_sockaddr_in *sin = <lkl_sockaddr_in *>out
    cdef lkl_sockaddr_in6 *sin6 = <lkl_sockaddr_in6 *>out
    cdef lkl_sockaddr_un *sun = <lkl_sockaddr_un *>out
    cdef bytes packed, path
    cdef str h
    cdef Py_ssize_t n
    memset(out, 0, ADDR_MAX)
    if family == LKL_AF_INET:
        if not isinstance(address, tuple):
            raise TypeError(f"{what}(): AF_INET address must be tuple, not {type(address).__name__}")
        if len(address) != 2:
            raise TypeError("AF_INET address must be a pair (host, port)")
        port = _port(address[1], what)
        packed = _inet4(address[0])
        sin.sin_family = LKL_AF_INET
        sin.sin_port = htons(port)
        memcpy(&sin.sin_addr, PyBytes_AS_STRING(packed), 4)
        return sizeof(lkl_sockaddr_in)
    if family == LKL_AF_INET6:
        if not isinstance(address, tuple):
            raise TypeError(f"{what}(): AF_INET6 address must be tuple, not {type(address).__name__}")
        if not 2 <= len(address) <= 4:
            raise TypeError("AF_INET6 address must be a tuple (host, port[, flowinfo[, scopeid]])")
        port = _port(address[1], what)
        flowinfo = address[2] if len(address) > 2 else 0
        scope_id = address[3] if len(address) > 3 else 0
        for v in (flowinfo, scope_id):
            if isinstance(v, bool) or not isinstance(v, int):
                raise TypeError(f"'{type(v).__name__}' object cannot be interpreted as an integer")
        if not 0 <= flowinfo <= 0xfffff:
            raise OverflowError(f"{what}(): flowinfo must be 0-1048575.")
        if not 0 <= scope_id <= 0xffffffff:
            raise OverflowError(f"{what}(): scope_id must be 0-4294967295.")
        h = _host_str(address[0])
        if "%" in h:
            h, _, scope = h.partition("%")
            if not scope.isdigit():
                raise _no_name()
            if not scope_id:
                scope_id = int(scope)
        packed = _inet6(h)
        sin6.sin6_family = LKL_AF_INET6
        sin6.sin6_port = htons(port)
        sin6.sin6_flowinfo = htonl(flowinfo)
        sin6.sin6_scope_id = scope_id
        memcpy(&sin6.sin6_addr, PyBytes_AS_STRING(packed), 16)
        return sizeof(lkl_sockaddr_in6)
    if family == LKL_AF_UNIX:
        if isinstance(address, str):
            path = _os.fsencode(address)
        elif isinstance(address, (bytes, bytearray, memoryview)):
            path = bytes(address)
        else:
            raise TypeError(f"{what}(): AF_UNIX address must be str or bytes-like, not {type(address).__name__}")
        n = len(path)
        if n > LKL_UNIX_PATH_MAX or (n == LKL_UNIX_PATH_MAX and path[:1] != b"\0"):
            raise OSError("AF_UNIX path too long")
        sun.sun_family = LKL_AF_UNIX
        memcpy(sun.sun_path, PyBytes_AS_STRING(path), n)
        return LKL_SUN_PATH_OFFSET + n
    raise OSError(_errno.EAFNOSUPPORT, f"{what}(): addresses of family {family} are not supported")


cdef object _decode_addr(const char *buf, Py_ssize_t length):
    """The Python spelling of the kernel sockaddr ``buf[:length]``."""
    cdef const lkl_sockaddr_in *sin = <const lkl_sockaddr_in *>buf
    cdef const lkl_sockaddr_in6 *sin6 = <const lkl_sockaddr_in6 *>buf
    cdef const lkl_sockaddr_un *sun = <const lkl_sockaddr_un *>buf
    cdef unsigned short family
    cdef Py_ssize_t n
    if length < <Py_ssize_t>sizeof(unsigned short):
        return None
    family = (<const unsigned short *>buf)[0]
    if family == LKL_AF_INET and length >= <Py_ssize_t>sizeof(lkl_sockaddr_in):
        return (_hostsocket.inet_ntop(_hostsocket.AF_INET, (<const char *>&sin.sin_addr)[:4]),
                ntohs(sin.sin_port))
    if family == LKL_AF_INET6 and length >= <Py_ssize_t>sizeof(lkl_sockaddr_in6):
        return (_hostsocket.inet_ntop(_hostsocket.AF_INET6, (<const char *>&sin6.sin6_addr)[:16]),
                ntohs(sin6.sin6_port), ntohl(sin6.sin6_flowinfo), sin6.sin6_scope_id)
    if family == LKL_AF_UNIX:
        n = length - LKL_SUN_PATH_OFFSET
        if n > 0 and sun.sun_path[0] == 0:
            return sun.sun_path[:n]          # the abstract namespace
        if n <= 0:
            return ""
        return _os.fsdecode(sun.sun_path[:strnlen(sun.sun_path, n)])
    return (family, buf[2:length])

