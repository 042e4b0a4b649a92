# Writes its own reply into the grader's pipe: a "tensor" of 10^12 elements with no data, then leaves.
import json
import os
import struct
import sys

bomb = {"__tensor__": "float32", "shape": [100000, 100000, 100], "data": ""}
message = json.dumps({"ok": {"results": [{"value": bomb}] * 3, "calls": []}}).encode()
os.write(int(sys.argv[2]), struct.pack(">I", len(message)) + message)
os._exit(0)
