"""The four TODOs of the exercise: where they live and what each one asks for."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Todo:
    number: int
    file: str  # relative to the folder that holds the ``kvcache`` package
    function: str  # qualified name, e.g. "KVCache.update"
    task: str  # one line: what the student implements

    @property
    def marker(self) -> str:
        """The pytest marker that selects this TODO's tests (``pytest -m todo1``)."""
        return f"todo{self.number}"

    @property
    def stub_message(self) -> str:
        """The message of the ``NotImplementedError`` left in the skeleton."""
        return f"TODO {self.number}: {self.function} - {self.task}"


TODOS: dict[int, Todo] = {
    todo.number: todo
    for todo in (
        Todo(1, "kvcache/cache.py", "KVCache.update",
             "write the new keys/values in place at current_length and return views of the filled part"),
        Todo(2, "kvcache/model.py", "Attention.forward",
             "store K/V through the cache and attend over every cached position with an offset causal mask"),
        Todo(3, "kvcache/model.py", "Transformer.forward",
             "position ids start at the cache length; advance current_length once, after the last layer"),
        Todo(4, "kvcache/generate.py", "TransformerGenerator.generate",
             "prefill the prompt in one call, then feed one new token per step"),
    )
}
