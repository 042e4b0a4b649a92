# Writes as much as it can where it may write: its working folder and the temporary folders.
import os as _os

_written = 0
for _folder in (".", "/tmp", "/dev/shm"):
    for _i in range(200):
        try:
            with open(_os.path.join(_folder, f"junk{_i}.bin"), "wb") as _f:
                for _ in range(16):
                    _f.write(b"\0" * (1 << 20))
                    _written += 1
        except OSError:
            break
print("DISK wrote", _written, "MB")
