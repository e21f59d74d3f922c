"""Test-only fault injection for tests/test_fault_tolerance.py (never part of generated code).

A directory on PYTHONPATH that holds a `sitecustomize.py` is imported by every Python process at start-up,
so a test puts this directory there and says in SPECC_FAULT="<mode>:<n>" what should go wrong:

- mid:<epoch>      SIGKILL after writing half of the temporary file of that epoch's checkpoint
- written:<epoch>  SIGKILL after the whole temporary file is written, before it is renamed into place
- renamed:<epoch>  SIGKILL right after the checkpoint is renamed into place (before old ones are pruned)
- enospc:<epoch>   the checkpoint's write fails part-way with OSError(ENOSPC), as on a full disk
- fsync:<epoch>    fsync of the checkpoint's temporary file fails with OSError(ENOSPC)
- step:<n>         SIGKILL right after optimizer step n, in the process of RANK 1 (first torchrun attempt only)

Without SPECC_FAULT it does nothing and imports nothing.
"""

from __future__ import annotations

import errno
import io
import os
import signal

_FAULT = os.environ.get("SPECC_FAULT", "")


def _kill() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _install(mode: str, n: int) -> None:
    import torch  # only in processes that asked for a fault

    tag = f"checkpoint-epoch{n:04d}-"

    if mode == "step":
        if os.environ.get("RANK") != "1" or os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") != "0":
            return
        steps = [0]

        def after_step(optimizer: object, args: object, kwargs: object) -> None:
            steps[0] += 1
            if steps[0] == n:
                _kill()

        from torch.optim.optimizer import register_optimizer_step_post_hook

        register_optimizer_step_post_hook(after_step)
        return

    if mode == "renamed":
        real_replace = os.replace

        def replace(src: object, dst: object, *args: object, **kwargs: object) -> None:
            real_replace(src, dst, *args, **kwargs)
            if tag in os.fspath(dst):
                _kill()

        os.replace = replace
        return

    if mode == "fsync":
        real_fsync = os.fsync

        def fsync(fd: int) -> None:
            if tag in os.readlink(f"/proc/self/fd/{fd}"):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            real_fsync(fd)

        os.fsync = fsync
        return

    real_save = torch.save

    def save(obj: object, f: object, *args: object, **kwargs: object) -> None:
        if tag not in str(getattr(f, "name", f)):
            return real_save(obj, f, *args, **kwargs)
        buffer = io.BytesIO()
        real_save(obj, buffer, *args, **kwargs)
        data = buffer.getvalue()
        if mode == "enospc":  # a file whose disk fills up half-way, under torch.save's own writer
            real_save(obj, _Full(f, len(data) // 2), *args, **kwargs)
            return None
        f.write(data if mode == "written" else data[: len(data) // 2])
        f.flush()
        os.fsync(f.fileno())
        _kill()
        return None

    torch.save = save


class _Full(io.RawIOBase):
    """A writable file that runs out of space after `room` bytes."""

    def __init__(self, handle: io.BufferedWriter, room: int) -> None:
        super().__init__()
        self.handle, self.room = handle, room

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        if len(data) > self.room:
            self.handle.write(bytes(data)[: self.room])
            self.room = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return self.handle.write(data)

    def flush(self) -> None:
        self.handle.flush()


if _FAULT:
    _mode, _, _n = _FAULT.partition(":")
    _install(_mode, int(_n))
