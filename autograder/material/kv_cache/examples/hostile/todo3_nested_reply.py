# Writes its own reply into the grader's pipe: JSON nested 100000 deep, then waits to be killed.
import os
import struct
import sys
import time

message = b'{"ok": ' + b"[" * 100000 + b"]" * 100000 + b"}"
os.write(int(sys.argv[2]), struct.pack(">I", len(message)) + message)
time.sleep(60)
