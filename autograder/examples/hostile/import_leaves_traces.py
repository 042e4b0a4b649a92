# Leaves traces for the next submission graded by the same worker: a file in every folder it can write, a System V
# shared memory segment, a detached process, and a change to the probe code it was started with; prints "LEFT" with
# each it managed.
import ctypes as _ctypes
import os as _os
import sys as _sys
import time as _time

_left = []
for _folder in ["/tmp", "/var/tmp", "/dev/shm", "/run/lock", "/var/lock", "/run", "/dev/mqueue", "/var/crash", "/",
                _os.environ.get("HOME", "/"), _os.getcwd(), _os.path.dirname(_os.path.dirname(__file__))]:
    try:
        with open(_os.path.join(_folder, "__KVKIT_MARK__"), "w") as _f:
            _f.write("the fresh inputs I saw")
        _left.append(_folder)
    except OSError:
        pass
_libc = _ctypes.CDLL(None, use_errno=True)
if _libc.shmget(0x4B564B, 4096, 0o1000 | 0o666) >= 0:  # IPC_CREAT, readable and writable by all
    _left.append("shm")
for _name, _module in list(_sys.modules.items()):  # the probe code the next child would run, if files were shared
    _file = getattr(_module, "__file__", None) or ""
    if _name.startswith("kvchecks") and _file.endswith(".py"):
        try:
            with open(_file, "a") as _f:
                _f.write("\nSTOLEN = True\n")
            _left.append(_file)
        except OSError:
            pass
if _os.fork() == 0:
    _os.setsid()
    if _os.fork() == 0:
        _libc.prctl(15, b"__KVKIT_MARK__"[:15], 0, 0, 0)
        _time.sleep(600)
    _os._exit(0)
print("LEFT", _left, flush=True)
