# Leaves a detached process behind (new session, ignores SIGTERM), still holding the output pipe.
import os as _os
import signal as _signal
import time as _time

_pid = _os.fork()
if _pid == 0:
    _os.setsid()
    _signal.signal(_signal.SIGTERM, _signal.SIG_IGN)
    if _os.fork() == 0:
        print("DETACHED", _os.getpid(), flush=True)
        _time.sleep(600)
    _os._exit(0)
_os.waitpid(_pid, 0)
