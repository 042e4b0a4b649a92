# Deletes and edits what it can reach: the kit, the harness it runs with, its own code; kills the grader.
import os as _os
import shutil as _shutil
import signal as _signal

_root = "__KVKIT_ROOT__"
_here = _os.path.dirname(_os.path.abspath(__file__))
_box = _os.path.dirname(_os.path.dirname(_here))
_tried = []
for _target in [f"{_root}/tests/kv_cache/goldens.json", f"{_root}/autograder/material/kv_cache/hidden/goldens.json",
                f"{_root}/tests/kvchecks/expect.py", f"{_box}/harness/kvchecks/expect.py",
                f"{_box}/harness/kvcache_checks/probes.py", f"{_box}/harness/kvchild/jail.py", f"{_here}/cache.py",
                "__KVKIT_SENTINEL__"]:
    for _action in ("edit", "delete"):
        try:
            if _action == "edit":
                with open(_target, "a") as _f:
                    _f.write("\n# vandalised\n")
            else:
                _os.remove(_target)
            _tried.append(f"{_action} {_target}: DONE")
        except OSError as _err:
            _tried.append(f"{_action} {_target}: {type(_err).__name__}")
for _folder in [f"{_root}/tests", f"{_box}/harness", f"{_box}/submission"]:
    try:
        _shutil.rmtree(_folder)
        _tried.append(f"rmtree {_folder}: DONE")
    except OSError as _err:
        _tried.append(f"rmtree {_folder}: {type(_err).__name__}")
for _pid in (_os.getppid(), 1):
    try:
        _os.kill(_pid, _signal.SIGKILL)
        _tried.append(f"kill {_pid}: DONE")
    except OSError as _err:
        _tried.append(f"kill {_pid}: {type(_err).__name__}")
print("\n".join(_tried))
print("VANDAL succeeded", sum(t.endswith("DONE") for t in _tried), "times out of", len(_tried))
