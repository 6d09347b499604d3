"""An interactive shell over a live kernel's procfs and sysfs, through its control socket.

``python -m lkl attach NAME`` with no command starts it::

    lkl:/proc/sys/net/ipv4> cat tcp_congestion_control
    cubic
    lkl:/proc/sys/net/ipv4> echo bbr > tcp_congestion_control

Commands: ``ls [PATH]``, ``cd [PATH]``, ``pwd``, ``cat PATH...``,
``echo TEXT > PATH``, ``help``, ``exit`` (or Ctrl-D).  Lines are edited
with readline when the terminal has it.  Every path is the kernel's.
"""

from __future__ import annotations

import cmd
import contextlib
import posixpath
import shlex
import stat
import sys
from typing import TextIO

from lkl import control

__all__ = ["Console", "run"]


class Console(cmd.Cmd):
    """The shell: one :class:`lkl.control.Client`, a current directory."""

    intro = "lkl console: ls, cd, pwd, cat, echo TEXT > FILE, help, exit"

    def __init__(self, client: control.Client, stdin: TextIO | None = None,
                 stdout: TextIO | None = None) -> None:
        super().__init__(stdin=stdin, stdout=stdout)
        if stdin is not None:
            self.use_rawinput = False
        self.client = client
        self.cwd = "/"

    @property
    def prompt(self) -> str:  # type: ignore[override]
        """The prompt shows the kernel's current directory."""
        return f"lkl:{self.cwd}> "

    def _path(self, arg: str) -> str:
        return posixpath.normpath(posixpath.join(self.cwd, arg or "."))

    def _error(self, e: OSError) -> None:
        where = f": {e.filename}" if e.filename else ""
        self.stdout.write(f"error: {e.strerror or e}{where}\n")

    def emptyline(self) -> bool:
        """An empty line does nothing (not: repeat the last command)."""
        return False

    def default(self, line: str) -> None:
        """An unknown command."""
        self.stdout.write(f"unknown command: {line.split()[0]} (try help)\n")

    def do_pwd(self, arg: str) -> None:
        """Print the current directory: pwd."""
        self.stdout.write(self.cwd + "\n")

    def do_cd(self, arg: str) -> None:
        """Change directory: cd [PATH] (default /)."""
        path = self._path(arg.strip() or "/")
        try:
            if not self.client.is_dir(path):
                self.stdout.write(f"error: not a directory: {path}\n")
                return
        except OSError as e:
            self._error(e)
            return
        self.cwd = path

    def do_ls(self, arg: str) -> None:
        """List a directory: ls [PATH] (directories end with /)."""
        path = self._path(arg.strip())
        try:
            entries = sorted(self.client.listdir(path))
        except NotADirectoryError:
            self.stdout.write(posixpath.basename(path) + "\n")
            return
        except OSError as e:
            self._error(e)
            return
        for name, dtype in entries:
            self.stdout.write(name + ("/" if dtype == 4 else "") + "\n")

    def do_cat(self, arg: str) -> None:
        """Print files: cat PATH..."""
        for name in shlex.split(arg):
            path = self._path(name)
            try:
                mode, _ = self.client.stat(path)
                if stat.S_ISDIR(mode):
                    self.stdout.write(f"error: is a directory: {path}\n")
                    continue
                data = self.client.read_bytes(path)
            except OSError as e:
                self._error(e)
                continue
            text = data.decode("utf-8", "replace")
            self.stdout.write(text if text.endswith("\n") or not text else text + "\n")

    def do_echo(self, arg: str) -> None:
        """Write TEXT and a newline into a file: echo TEXT > PATH (echo TEXT prints it)."""
        text, redirect, target = arg.rpartition(">")
        if not redirect:
            self.stdout.write(arg + "\n")
            return
        target = target.strip()
        if not target:
            self.stdout.write("error: echo TEXT > PATH needs a path\n")
            return
        words = shlex.split(text)
        try:
            self.client.write_bytes(self._path(target), (" ".join(words) + "\n").encode())
        except OSError as e:
            self._error(e)

    def do_exit(self, arg: str) -> bool:
        """Leave the console: exit."""
        return True

    do_quit = do_exit

    def do_EOF(self, arg: str) -> bool:
        """Ctrl-D leaves too."""
        self.stdout.write("\n")
        return True


def run(name: str, stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    """Run the console on instance ``name`` until exit; 0."""
    with contextlib.suppress(ImportError):
        import readline  # noqa: F401  (line editing for cmd.Cmd's input())
    with control.Client(name) as client:
        shell = Console(client, stdin=stdin, stdout=stdout)
        shell.intro = f"{Console.intro}\nattached to {client.name} (pid {client.pid})"
        try:
            shell.cmdloop()
        except KeyboardInterrupt:
            (stdout or sys.stdout).write("\n")
    return 0
