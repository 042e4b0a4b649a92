# A correct alternative: each refusal with its own message, then the length set.
if length < 0:
    raise ValueError(f"crop length must be >= 0, got {length}")
if length > self.current_length:
    raise ValueError(f"crop({length}) would grow a cache that holds {self.current_length} positions")
self.current_length = int(length)
