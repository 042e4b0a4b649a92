# Mistake: a preempted request gives its blocks back to the pool but keeps its block table and computed, so when
# it runs again it reads (and writes) blocks that other requests hold now.
pool = self.cache.allocator
needs = [self.cache.blocks_needed(r.request_id, self.feed(r)) for r in self.running]
preempted = False
while self.running and sum(needs) > pool.num_free():
    victim = self.running.pop()
    needs.pop()
    pool.free(self.cache.block_tables[victim.request_id])
    self.waiting.insert(0, victim)
    preempted = True
reserved = sum(needs)
while self.waiting and len(self.running) < self.max_running and not preempted:
    first = self.waiting[0]
    need = self.cache.blocks_needed(first.request_id, self.feed(first))
    if reserved + need > pool.num_free():
        break
    if first.request_id not in self.cache.block_tables:
        self.cache.add_sequence(first.request_id)
    self.running.append(self.waiting.pop(0))
    reserved += need
if not self.running:
    return []
feeds = [self.feed(r) for r in self.running]
tokens = [r.tokens[r.computed:r.computed + n] for r, n in zip(self.running, feeds)]
logits = self.model(tokens, self.cache, [r.request_id for r in self.running])
done, last = [], -1
for request, n in zip(list(self.running), feeds):
    last += n
    request.computed += n
    if request.computed == len(request.tokens):
        request.output.append(int(logits[last].argmax()))
    if len(request.output) == request.max_new_tokens:
        self.cache.free_sequence(request.request_id)
        self.running.remove(request)
        self.finished[request.request_id] = request
        done.append(request.request_id)
return done
