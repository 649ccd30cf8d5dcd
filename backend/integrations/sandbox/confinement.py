"""How one run is confined: bubblewrap's mounts and devices, and rlimits that add up to SANDBOX_MEMORY_MB.

No `preexec_fn` anywhere in the runner's path: rlimits are set by util-linux's `prlimit` and the slot's
uid by `setpriv`, both exec'd in front of bwrap, so starting a run is a vfork + exec.
"""

from __future__ import annotations

import math
import os
import struct
from dataclasses import dataclass

PRLIMIT = "/usr/bin/prlimit"
SETPRIV = "/usr/bin/setpriv"
MAX_PROCESSES = 6  # per run: the outer bwrap, the harness, its child interpreter and three more
MAX_FILE_BYTES = 8 * 1024 * 1024
MAX_OPEN_FILES = 64
SYSTEM_LINKS = ("/bin", "/lib", "/lib64", "/sbin")
DEVICES = ("null", "zero", "random", "urandom")


@dataclass(frozen=True)
class RunLimits:
    """Per-run caps that add up to `memory_bytes`: the /tmp tmpfs plus MAX_PROCESSES × RLIMIT_AS."""

    memory_bytes: int

    @property
    def tmpfs_bytes(self) -> int:
        return self.memory_bytes // 8

    @property
    def process_bytes(self) -> int:
        return (self.memory_bytes - self.tmpfs_bytes) // MAX_PROCESSES

    def prlimit(self, timeout: float) -> list[str]:
        cpu = math.ceil(timeout) + 1  # CPU seconds per process; the wall clock is the real bound
        return [
            PRLIMIT,
            f"--cpu={cpu}",
            f"--as={self.process_bytes}",
            f"--nproc={MAX_PROCESSES}",
            f"--fsize={MAX_FILE_BYTES}",
            f"--nofile={MAX_OPEN_FILES}",
            "--msgqueue=0",
            "--core=0",
            "--",
        ]


def switch_uid(uid: int) -> list[str]:
    return [SETPRIV, f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--"]


def device_args() -> list[str]:
    """A read-only /dev with the four harmless devices: bwrap's own `--dev` is a writable tmpfs (with
    /dev/shm) bounded only by half of the host's RAM."""
    args = ["--tmpfs", "/dev"]
    for name in DEVICES:
        args += ["--dev-bind", f"/dev/{name}", f"/dev/{name}"]
    for link, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1")):
        args += ["--symlink", target, f"/dev/{link}"]
    return [*args, "--symlink", "/proc/self/fd/2", "/dev/stderr", "--remount-ro", "/dev"]


def system_links() -> list[str]:
    """/bin, /lib... are symlinks into /usr on merged-/usr systems (Debian 12): recreate them as such."""
    args: list[str] = []
    for path in SYSTEM_LINKS:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    return args


# --- seccomp: what no rlimit bounds ------------------------------------------------------------------
# SysV shared memory lives in the run's IPC namespace, outside every process's RLIMIT_AS and every tmpfs
# size: shmget is refused (EPERM). So is memfd_create: a memfd file is bounded only by RLIMIT_FSIZE, and a
# process may hold RLIMIT_NOFILE of them (the harness gives stdin through a pipe instead). So are system
# calls of a foreign ABI (x32, i386 via int 0x80), which would bypass a filter written for the native
# numbers. A classic BPF program for bwrap's --seccomp.
AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
SHMGET = {"x86_64": 29, "aarch64": 194}
MEMFD_CREATE = {"x86_64": 319, "aarch64": 279}
X32_SYSCALL_BIT = 0x40000000
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
EPERM = 1


def seccomp_program() -> bytes | None:
    """The filter for this machine's architecture, or None where we do not know its numbers."""
    machine = os.uname().machine
    if machine not in AUDIT_ARCH:
        return None
    load, jeq, jge, ret = 0x20, 0x15, 0x35, 0x06  # BPF_LD|W|ABS, BPF_JMP|JEQ|K, BPF_JMP|JGE|K, BPF_RET|K
    deny = SECCOMP_RET_ERRNO | EPERM
    instructions = [
        (load, 0, 0, 4),  # seccomp_data.arch
        (jeq, 1, 0, AUDIT_ARCH[machine]),
        (ret, 0, 0, deny),
        (load, 0, 0, 0),  # seccomp_data.nr
        (jge, 3, 0, X32_SYSCALL_BIT),
        (jeq, 2, 0, SHMGET[machine]),
        (jeq, 1, 0, MEMFD_CREATE[machine]),
        (ret, 0, 0, SECCOMP_RET_ALLOW),
        (ret, 0, 0, deny),
    ]
    return b"".join(struct.pack("=HBBI", *instruction) for instruction in instructions)
