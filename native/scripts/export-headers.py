#!/usr/bin/env python3
"""Export the kernel's uapi headers under an lkl_/LKL_ prefix.

The installed uapi tree (linux/, asm/, asm-generic/) clashes with the C
library's own headers: same file names, same struct and macro names,
different syscall numbers.  This rewrites it so both can be included in
one file: ``<linux/in.h>`` becomes ``<lkl/linux/in.h>``, every name the
tree defines (macros, typedefs, struct/union/enum tags, enum constants)
gets a prefix: ``AF_INET`` -> ``LKL_AF_INET``, ``struct sockaddr_in`` ->
``struct lkl_sockaddr_in``, ``__NR_read`` -> ``LKL__NR_read``.

Usage: export-headers.py UAPI_INCLUDE_DIR OUT_DIR
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
KEEP = {"__attribute__", "__extension__", "__inline__", "__asm__", "__volatile__",
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


def defined_names(text: str) -> set[str]:
    """Every name a header defines."""
    text = COMMENT.sub(" ", text)
    names = set(DEFINE.findall(text))
    names.update(TAG.findall(text))
    names.update(TYPEDEF_END.findall(text))
    names.update(TYPEDEF_FN.findall(text))
    for body in ENUM_BODY.findall(text):
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


def main() -> int:
    src, dst = Path(sys.argv[1]), Path(sys.argv[2])
    files = [p for d in SUBDIRS for p in sorted((src / d).rglob("*.h"))]
    names: set[str] = set()
    for path in files:
        names |= defined_names(path.read_text(errors="replace"))
    spelled = spellings(names)
    for path in files:
        target = dst / path.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(rewrite(path.read_text(errors="replace"), spelled))
    print(f"[lkl build] exported {len(files)} uapi headers, {len(names)} names prefixed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
