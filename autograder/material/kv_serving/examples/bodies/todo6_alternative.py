# A correct alternative: the missing count kept explicitly, .item() for the choices, the draft cropped only when
# it ran ahead of the committed tokens.
_check_request([prompt], max_new_tokens, self.max_seq_len)
self.stats = dict(target_calls=0, draft_calls=0, proposed=0, accepted=0)
tokens = list(prompt)
if max_new_tokens == 0:
    return tokens
target_cache = self.target.new_cache()
draft_cache = self.draft.new_cache()
first = self.target.model(self._ids(tokens), kv_cache=target_cache)[0, -1]
self.stats["target_calls"] += 1
tokens.append(int(first.argmax().item()))
missing = max_new_tokens - 1
while missing > 0:
    k = min(self.draft_tokens, missing - 1)
    drafted = []
    feed = tokens[draft_cache.current_length:]
    while len(drafted) < k:
        guess = int(self.draft.model(self._ids(feed), kv_cache=draft_cache)[0, -1].argmax().item())
        self.stats["draft_calls"] += 1
        drafted.append(guess)
        feed = [guess]
    verdict = self.target.model(self._ids([tokens[-1]] + drafted), kv_cache=target_cache)[0].argmax(dim=-1)
    self.stats["target_calls"] += 1
    self.stats["proposed"] += k
    matched = 0
    for guess, choice in zip(drafted, verdict.tolist()):
        if guess != choice:
            break
        matched += 1
    self.stats["accepted"] += matched
    committed = drafted[:matched] + [int(verdict[matched].item())]
    tokens.extend(committed)
    missing -= len(committed)
    target_cache.crop(len(tokens) - 1)
    if draft_cache.current_length > len(tokens) - 1:
        draft_cache.crop(len(tokens) - 1)
return tokens
