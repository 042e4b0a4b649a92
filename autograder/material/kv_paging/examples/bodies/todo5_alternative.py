# A correct alternative: the free blocks kept as a running budget; the logits read by offsets.
budget = self.cache.allocator.num_free()
plan = {r.request_id: self.cache.blocks_needed(r.request_id, self.feed(r)) for r in self.running}
preempted = []
while self.running and sum(plan.values()) > budget:
    newest = self.running[-1]
    self.running = self.running[:-1]
    del plan[newest.request_id]
    self.cache.free_sequence(newest.request_id)
    budget = self.cache.allocator.num_free()
    newest.computed = 0
    preempted.append(newest)
self.waiting[:0] = preempted[::-1] if len(preempted) > 1 else preempted
budget -= sum(plan.values())
while not preempted and self.waiting and len(self.running) < self.max_running:
    cost = self.cache.blocks_needed(self.waiting[0].request_id, self.feed(self.waiting[0]))
    if cost > budget:
        break
    budget -= cost
    request = self.waiting.pop(0)
    self.cache.add_sequence(request.request_id)
    self.running.append(request)
if len(self.running) == 0:
    return []
batch = [(r, self.feed(r)) for r in self.running]
logits = self.model([r.tokens[r.computed:r.computed + n] for r, n in batch], self.cache,
                    [r.request_id for r, _ in batch])
offsets, total = [], 0
for _, n in batch:
    total += n
    offsets.append(total - 1)
finished = []
for (request, n), row in zip(batch, offsets):
    request.computed += n
    if request.computed == len(request.prompt) + len(request.output):
        request.output.append(logits[row].argmax().item())
    if len(request.output) >= request.max_new_tokens:
        finished.append(request.request_id)
        self.finished[request.request_id] = request
        self.cache.free_sequence(request.request_id)
self.running = [r for r in self.running if r.request_id not in self.finished]
return finished
