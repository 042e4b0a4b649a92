# Allocates without bound: Python objects, then a huge tensor.
hog = []
for _ in range(10_000):
    hog.append(bytearray(100 * 1024 * 1024))
    hog[-1][::4096] = b"x" * len(hog[-1][::4096])  # touch every page
return torch.empty(1 << 40)
