"""Child processes that die with the process that started them (standard library only).

The STAC API server and proxy (``api_server``) and the process pools (``runners``) start them.
"""

import os
import signal
import subprocess

PR_SET_PDEATHSIG = 1


def _load_prctl():
    try:
        import ctypes
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux: the owners' teardown and atexit still stop them
        return None


_PRCTL = _load_prctl()


def die_with_parent(parent_pid=None):
    """Have the kernel SIGKILL this process when its parent dies (PR_SET_PDEATHSIG).

    The signal follows the parent *thread* that started the child: start children from a
    thread that lives as long as they should (the benchmark's main thread).  ``parent_pid``
    closes the race where the parent died before this call: then exit at once.
    """
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, signal.SIGKILL)
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(1)


def kill_group(proc, grace=3.0):
    """SIGTERM the process group of ``proc`` (a ``Popen`` started in a new session), then SIGKILL."""
    if proc is None or proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue
