#!/usr/bin/env python3
"""Export the kernel's uapi headers under an lkl_/LKL_ prefix.

The installed uapi tree (linux/, asm/, asm-generic/) clashes with the C
library's own headers: same file names, same struct and macro names,
different syscall numbers.  This rewrites it so both can be included in
one file: ``<linux/in.h>`` becomes ``<lkl/linux/in.h>``, every name the
tree defines (macros, typedefs, struct/union/enum tags, enum constants)
gets a prefix: ``AF_INET`` -> ``LKL_AF_INET``, ``struct sockaddr_in`` ->
``struct lkl_sockaddr_in``, ``__NR_read`` -> ``LKL__NR_read``.

Two additions make the tree usable on its own:
- ``linux/libc-compat.h`` normally lets the C library's definitions win;
  here it defines every ``__UAPI_DEF_*`` switch so the kernel's own
  (prefixed) structures are always declared.
- ``linux/socket_abi.h`` carries the socket ABI that the kernel keeps
  outside uapi (AF_*, SOL_*, MSG_*, SOCK_*, struct sockaddr,
  struct user_msghdr), taken from the kernel source.

Usage: export-headers.py UAPI_INCLUDE_DIR KERNEL_SOURCE_DIR OUT_DIR
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

SUBDIRS = ("linux", "asm", "asm-generic")

IDENT = re.compile(r"\b[A-Za-z_][A-Za-z0-9_]*\b")
DEFINE = re.compile(r"^\s*#\s*define\s+([A-Za-z_][A-Za-z0-9_]*)", re.M)
TAG = re.compile(r"\b(?:struct|union|enum)\s+([A-Za-z_][A-Za-z0-9_]*)")
TYPEDEF_END = re.compile(r"\btypedef\b[^;{]*?([A-Za-z_][A-Za-z0-9_]*)\s*(?:\[[^\]]*\]\s*)*;")
TYPEDEF_FN = re.compile(r"\btypedef\b[^;]*?\(\s*\*\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)")
ENUM_BODY = re.compile(r"\benum\b[^{;]*\{([^}]*)\}", re.S)
INCLUDE = re.compile(r'^(\s*#\s*include\s*[<"])((?:linux|asm|asm-generic)/[^>"]+)([>"])', re.M)
COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)

# Names the compiler or the C library own: never renamed.
C_KEYWORDS = set("""auto break case char const continue default do double else enum extern
float for goto if inline int long register restrict return short signed sizeof static struct
switch typedef union unsigned void volatile while _Bool""".split())
KEEP = C_KEYWORDS | {"__attribute__", "__extension__", "__inline__", "__asm__", "__volatile__",
        "__signed__", "__typeof__", "__CHAR_BIT__", "__SIZEOF_LONG__"}


def spellings(names: set[str]) -> dict[str, str]:
    """The exported spelling of each name.  The case of its first letter
    picks the prefix, and a leading underscore joins it: ``AF_INET`` ->
    ``LKL_AF_INET``, ``__NR_read`` -> ``LKL__NR_read``, ``__u32`` ->
    ``lkl__u32``.  Where two names would meet, the underscored one keeps
    a separating underscore (``_IOC`` -> ``LKL__IOC`` if ``IOC`` exists)."""
    out: dict[str, str] = {}
    for name in names:
        stem = "LKL" if name.lstrip("_")[:1].isupper() else "lkl"
        out[name] = stem + name if name.startswith("_") else f"{stem}_{name}"
    taken: dict[str, str] = {}
    for name in sorted(names, key=lambda n: n.startswith("_")):
        if out[name] in taken:
            out[name] = out[name][:3] + "_" + name
        taken[out[name]] = name
    return out


def typedefs_with_body(text: str) -> list[str]:
    """Names of ``typedef struct { ... } name;`` forms (bodies may nest)."""
    names = []
    for m in re.finditer(r"\btypedef\s+(?:struct|union|enum)\b[^;{]*\{", text):
        depth, i = 1, m.end()
        while depth and i < len(text):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        tail = re.match(r"[^;]*?([A-Za-z_][A-Za-z0-9_]*)\s*(?:\[[^\]]*\]\s*)*;", text[i:])
        if tail:
            names.append(tail.group(1))
    return names


def defined_names(text: str) -> set[str]:
    """Every name a header defines."""
    text = COMMENT.sub(" ", text)
    names = set(DEFINE.findall(text))
    names.update(typedefs_with_body(text))
    names.update(TAG.findall(text))
    names.update(TYPEDEF_END.findall(text))
    names.update(TYPEDEF_FN.findall(text))
    for body in ENUM_BODY.findall(text):
        body = re.sub(r"^\s*#.*$", "", body, flags=re.M)
        for item in body.split(","):
            m = re.match(r"\s*([A-Za-z_][A-Za-z0-9_]*)", item)
            if m:
                names.add(m.group(1))
    return names - KEEP


def rewrite(text: str, names: dict[str, str]) -> str:
    """The header with includes moved under lkl/ and defined names prefixed."""
    text = INCLUDE.sub(lambda m: f"{m.group(1)}lkl/{m.group(2)}{m.group(3)}", text)
    out = []
    # Leave include paths alone: they were rewritten above.
    for line in text.splitlines(keepends=True):
        if re.match(r"\s*#\s*include\b", line):
            out.append(line)
        else:
            out.append(IDENT.sub(lambda m: names.get(m.group(0), m.group(0)), line))
    return "".join(out)


SIMPLE_DEFINE = re.compile(r"^#define\s+((?:AF|PF|SOL|MSG|SCM|SOMAXCONN)\w*)\s+([^/\n]+?)\s*(?:/\*.*)?$", re.M)

SOCKET_STRUCTS = """
struct sockaddr {
	__kernel_sa_family_t sa_family;
	char sa_data[14];
};

struct linger {
	int l_onoff;
	int l_linger;
};

struct user_msghdr {
	void *msg_name;
	int msg_namelen;
	struct iovec *msg_iov;
	__kernel_size_t msg_iovlen;
	void *msg_control;
	__kernel_size_t msg_controllen;
	unsigned int msg_flags;
};

struct mmsghdr {
	struct user_msghdr msg_hdr;
	unsigned int msg_len;
};

struct cmsghdr {
	__kernel_size_t cmsg_len;
	int cmsg_level;
	int cmsg_type;
};
"""


def socket_abi(kernel: Path) -> str:
    """linux/socket_abi.h: the socket constants and structures of the
    kernel's non-uapi include/linux/socket.h and include/linux/net.h."""
    sock = (kernel / "include/linux/socket.h").read_text()
    net = (kernel / "include/linux/net.h").read_text()
    lines = ["/* Generated by export-headers.py from include/linux/{socket,net}.h */",
             "#ifndef _LINUX_SOCKET_ABI_H", "#define _LINUX_SOCKET_ABI_H", "",
             "#include <linux/types.h>", "#include <linux/uio.h>", "#include <linux/fcntl.h>",
             "#include <linux/socket.h>", "#include <asm/socket.h>", ""]
    seen = set()
    for name, value in SIMPLE_DEFINE.findall(sock):
        # One-line values only: a continued macro would swallow the next line.
        if value.endswith("\\"):
            continue
        if name not in seen and "CONFIG" not in value and "compat" not in value.lower():
            seen.add(name)
            lines.append(f"#define {name} {value}")
    for name, value in re.findall(r"^\s*(SOCK_[A-Z]+)\s*=\s*(\d+)", net, re.M):
        lines.append(f"#define {name} {value}")
    shutdown = re.search(r"enum sock_shutdown_cmd \{([^}]*)\}", net)
    if shutdown:
        for value, name in enumerate(re.findall(r"\b(SHUT_[A-Z]+)\b", shutdown.group(1))):
            lines.append(f"#define {name} {value}")
    lines += ["#define SOCK_CLOEXEC O_CLOEXEC", "#define SOCK_NONBLOCK O_NONBLOCK",
              SOCKET_STRUCTS, "#endif", ""]
    return "\n".join(lines)


def libc_compat(text: str) -> str:
    """libc-compat.h with every __UAPI_DEF_ switch on."""
    switches = sorted(set(re.findall(r"\b(__UAPI_DEF_\w+)", text)))
    body = "\n".join(f"#define {name} 1" for name in switches)
    return f"#ifndef _UAPI_LIBC_COMPAT_H\n#define _UAPI_LIBC_COMPAT_H\n{body}\n#endif\n"


def main() -> int:
    src, kernel, dst = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    (src / "linux/socket_abi.h").write_text(socket_abi(kernel))
    compat = src / "linux/libc-compat.h"
    compat.write_text(libc_compat(compat.read_text()))
    files = [p for d in SUBDIRS for p in sorted((src / d).rglob("*.h"))]
    names: set[str] = set()
    for path in files:
        names |= defined_names(path.read_text(errors="replace"))
    spelled = spellings(names)
    # Headers that use struct sockaddr, which the C library would define.
    needs_sockaddr = re.compile(r"\bstruct\s+sockaddr\b(?!_)")
    abi_itself = {"linux/socket_abi.h", "linux/socket.h", "linux/types.h", "linux/uio.h",
                  "linux/fcntl.h"}
    for path in files:
        rel = path.relative_to(src)
        text = path.read_text(errors="replace")
        out = rewrite(text, spelled)
        if str(rel) not in abi_itself and needs_sockaddr.search(COMMENT.sub(" ", text)):
            out = "#include <lkl/linux/socket_abi.h>\n" + out
        target = dst / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(out)
    print(f"[lkl build] exported {len(files)} uapi headers, {len(names)} names prefixed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
