"""Continuous batching: many requests share the model and the pool, each joining and leaving between steps.

Every step runs one forward over every running request: a decoding request feeds its last token, a request being
prefilled a chunk of its prompt. A request that finishes frees its blocks at once, and a waiting one takes them
at the next step, instead of waiting for the whole batch to finish (static batching). When the pool runs out,
the newest request gives its blocks back and is computed again later (preemption by recomputation).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .cache import PagedKVCache


@dataclass
class Request:
    """One generation request and how far it has come.

    ``output``: the tokens generated so far (greedy); ``computed``: how many
    of ``tokens = prompt + output`` are in the cache. A request is finished
    when ``len(output) == max_new_tokens``.
    """

    request_id: int
    prompt: list[int]
    max_new_tokens: int
    output: list[int] = field(default_factory=list)
    computed: int = 0

    @property
    def tokens(self) -> list[int]:
        return self.prompt + self.output


class Scheduler:
    """Serves requests on ``model`` and a :class:`PagedKVCache` it owns: ``submit`` them, then ``step`` (or ``run``).

    ``waiting``: requests not running, first to be admitted first (a
    preempted request goes back to the front); ``running``: the requests in
    the batch, oldest first (in the order they were admitted); ``finished``:
    request id -> its finished :class:`Request`. Each request's sequence in
    the cache has the request's id. ``max_running`` bounds the batch;
    ``prefill_chunk`` (None: no bound) bounds the tokens one request feeds in
    one step.
    """

    def __init__(self, model, cache: PagedKVCache, max_running: int = 8, prefill_chunk: int | None = None) -> None:
        if max_running < 1 or (prefill_chunk is not None and prefill_chunk < 1):
            raise ValueError(f"need max_running >= 1 and prefill_chunk >= 1 (or None), got {max_running} and "
                             f"{prefill_chunk}")
        self.model = model
        self.cache = cache
        self.max_running = max_running
        self.prefill_chunk = prefill_chunk
        self.waiting: list[Request] = []
        self.running: list[Request] = []
        self.finished: dict[int, Request] = {}

    def submit(self, request_id: int, prompt: list[int], max_new_tokens: int) -> None:
        """Queue a request at the end of ``waiting``. ``ValueError`` for an id submitted before, an empty prompt,
        ``max_new_tokens < 1``, or a request the whole pool could not hold (``len(prompt) + max_new_tokens - 1``
        positions: its last token is never fed)."""
        known = {r.request_id for r in self.waiting + self.running} | set(self.finished)
        if request_id in known:
            raise ValueError(f"request {request_id} was submitted before")
        if not prompt or max_new_tokens < 1:
            raise ValueError("a request needs a prompt of at least one token and max_new_tokens >= 1")
        positions = len(prompt) + max_new_tokens - 1
        pool = self.cache.allocator
        if -(-positions // self.cache.block_size) > pool.num_blocks:
            raise ValueError(f"request {request_id} needs room for length {positions}; the whole pool holds "
                             f"{pool.num_blocks * self.cache.block_size}")
        self.waiting.append(Request(request_id, list(prompt), max_new_tokens))

    def feed(self, request: Request) -> int:
        """How many tokens ``request`` feeds in this step: the rest of its tokens not yet in the cache, at most
        ``prefill_chunk``."""
        missing = len(request.tokens) - request.computed
        return missing if self.prefill_chunk is None else min(missing, self.prefill_chunk)

    def step(self) -> list[int]:
        """One step of continuous batching; returns the ids of the requests that finished in it, in batch order.

        1. **Room for the running.** Each running request will feed
           ``feed(r)`` tokens, which take ``cache.blocks_needed(r.request_id,
           feed(r))`` blocks. While the running requests need more blocks
           than ``allocator.num_free()``, preempt the newest (the last of
           ``running``): ``cache.free_sequence`` its blocks, set its
           ``computed`` to 0 (its ``output`` stays: it computes prompt and
           output again later) and put it at the front of ``waiting``.
        2. **Admit**, unless this step preempted a request (the blocks it
           freed go to the running requests, not to a newcomer). While
           ``waiting`` is not empty and fewer than ``max_running`` requests
           run: the first waiting request ``r`` would feed ``feed(r)`` tokens
           into a new sequence, which takes ``cache.blocks_needed(
           r.request_id, feed(r))`` blocks. If those and the blocks the
           running requests need are more than the free blocks, stop
           admitting (first come, first served: no request overtakes
           another). Else ``cache.add_sequence(r.request_id)`` and move ``r``
           to the end of ``running``.
        3. With no request running, return ``[]`` without calling the model.
        4. **One forward** over every running request, in ``running``'s
           order: ``self.model(tokens, self.cache, seq_ids)`` with
           ``tokens[i] = r.tokens[r.computed : r.computed + feed(r)]`` and
           ``seq_ids[i] = r.request_id`` (the model appends the positions);
           it returns the logits of every fed token, ``[sum of feeds,
           vocab]``, request after request.
        5. For each request, in that order: ``computed`` grows by its feed;
           if that reaches ``len(r.tokens)``, the argmax of its last fed
           token's logits (a Python int) is appended to ``output``; a request
           with ``max_new_tokens`` outputs is finished: its sequence is freed
           (``cache.free_sequence``), it leaves ``running`` and goes to
           ``finished``.

        Each request's output is then the greedy decoding of its prompt
        alone, whatever the other requests, their arrival, the pool's size
        or the preemptions; without a preemption no position is computed
        twice.
        """
        ### BEGIN SOLUTION
        pool = self.cache.allocator
        needs = [self.cache.blocks_needed(r.request_id, self.feed(r)) for r in self.running]
        preempted = False
        while self.running and sum(needs) > pool.num_free():
            victim = self.running.pop()
            needs.pop()
            self.cache.free_sequence(victim.request_id)
            victim.computed = 0
            self.waiting.insert(0, victim)
            preempted = True
        reserved = sum(needs)
        while self.waiting and len(self.running) < self.max_running and not preempted:
            first = self.waiting[0]
            need = self.cache.blocks_needed(first.request_id, self.feed(first))
            if reserved + need > pool.num_free():
                break
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
        ### END SOLUTION

    def run(self) -> dict[int, list[int]]:
        """Step until no request waits or runs; returns each finished request's output by id. ``RuntimeError`` when
        a step runs nothing while requests wait (the pool holds sequences this scheduler does not own)."""
        while self.waiting or self.running:
            self.step()
            if self.waiting and not self.running:
                raise RuntimeError(f"request {self.waiting[0].request_id} does not fit the free blocks of the pool")
        return {request_id: request.output for request_id, request in self.finished.items()}
