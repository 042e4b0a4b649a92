# Tries to reach the network (to send the code somewhere, or fetch an answer).
import socket as _socket

try:
    _socket.create_connection(("pypi.org", 443), timeout=5).close()
    print("NETWORK reachable")
except OSError as _err:
    print("NETWORK blocked", type(_err).__name__)
