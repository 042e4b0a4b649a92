# Looks for what an earlier submission graded by the same worker left behind (import_leaves_traces.py) and prints
# "TRACES FOUND" with what it found.
import ctypes as _ctypes
import os as _os
import sys as _sys

_found = []
for _folder in ["/tmp", "/var/tmp", "/dev/shm", "/run/lock", "/var/lock", "/run", "/dev/mqueue", "/var/crash", "/",
                _os.environ.get("HOME", "/"), _os.getcwd(), _os.path.dirname(_os.path.dirname(__file__))]:
    if _os.path.exists(_os.path.join(_folder, "__KVKIT_MARK__")):
        _found.append(_folder)
if _ctypes.CDLL(None, use_errno=True).shmget(0x4B564B, 0, 0) >= 0:
    _found.append("shm")
for _name, _module in list(_sys.modules.items()):
    if _name.startswith("kvchecks") and getattr(_module, "STOLEN", False):
        _found.append(_name)
for _pid in filter(str.isdigit, _os.listdir("/proc")):
    try:
        with open(f"/proc/{_pid}/comm") as _f:
            if _f.read().strip() == "__KVKIT_MARK__"[:15]:
                _found.append(f"process {_pid}")
    except OSError:
        pass
print("TRACES FOUND", _found, flush=True)
