"""The engine: pools the requests of every task of a run, answers each distinct one once, hands them back.

Distinct requests are sorted by length (longest first, so an out-of-memory error shows at once) and cut
into batches by a token budget that counts padding, or by a fixed number of rows. Generation has a budget
of its own: its memory is the key/value cache, not a forward pass's activations, and its speed comes from
many rows per decoding step (each step costs about the same fixed overhead whatever the number of rows).
A backend that schedules requests itself (`Backend.batches_itself`, vLLM's continuous batching) gets all the
requests of such a kind in one call.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tqdm.auto import tqdm

from mu_eval.backend import Backend
from mu_eval.cache import AnswerCache
from mu_eval.distributed import Processes, share_by_tokens
from mu_eval.preflight import check_context, task_source
from mu_eval.requests import Generate, Request, Result

DEFAULT_CPU_BUDGET = 4096
DEFAULT_CUDA_BUDGET = 32768
MAX_ROWS_AUTO = 512
#: Generation's row cap is higher: decoding steps cost about the same whatever the rows, and a row that has
#: finished leaves the batch (backends that retire rows), so wide batches no longer wait on their longest row.
MAX_GENERATION_ROWS_AUTO = 2048


@dataclass
class EngineStats:
    requested: int = 0
    distinct: int = 0
    from_cache: int = 0
    answered: int = 0
    batches: int = 0
    oom_backoffs: int = 0
    token_budget: int | None = None
    generation_budget: int | None = None
    by_kind: dict[str, int] = field(default_factory=dict)
    #: Requests a benchmark's truncation rule cut (found by the pre-flight), in all and per task or attack.
    truncated: int = 0
    truncated_by_source: dict[str, int] = field(default_factory=dict)
    #: Answers the answer cache could not serve or keep (a corrupt, unreadable or unwritable cache): each was
    #: computed again, or not stored; the numbers do not change.
    cache_faults: int = 0
    #: The cache's warnings (a file moved aside, the cache turned off), as they were printed.
    cache_warnings: list[str] = field(default_factory=list)
    #: Data-parallel processes that shared the requests, and how many each answered (`batches` is this
    #: process's own count).
    processes: int = 1
    answered_by_process: list[int] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The statistics; the data-parallel ones only when several processes shared the work."""
        data = dict(self.__dict__)
        if self.processes == 1:
            del data["processes"], data["answered_by_process"]
        return data


class ProcessFailedError(RuntimeError):
    """Another data-parallel process failed: this one stops rather than wait for its answers."""


def _is_out_of_memory(error: BaseException) -> bool:
    import torch

    return isinstance(error, torch.cuda.OutOfMemoryError) or "out of memory" in str(error).lower()


class Engine:
    """Answers requests through one backend, with batching, deduplication and an optional cache.

    `batch_size` is a number of rows per batch, or "auto" for a token budget that halves on CUDA
    out-of-memory errors until a batch fits. `generation_budget` (prompt plus new tokens per generation
    batch) defaults to what the backend says fits in memory, else to `token_budget`.

    With `processes` (several data-parallel processes, each running the same run with its own copy of the
    model), the distinct requests not already answered are shared among the processes by tokens, and every
    process receives every answer; the main process reads and writes the answer cache for all of them.
    """

    def __init__(
        self,
        backend: Backend,
        batch_size: int | str = "auto",
        cache: AnswerCache | None = None,
        token_budget: int | None = None,
        progress: bool = True,
        generation_budget: int | None = None,
        processes: Processes | None = None,
    ) -> None:
        if batch_size != "auto" and (not isinstance(batch_size, int) or batch_size < 1):
            raise ValueError(f"batch size must be a positive integer or 'auto', got {batch_size!r}")
        self.backend = backend
        self.batch_size = batch_size
        self.cache = cache
        self.progress = progress
        self.stats = EngineStats()
        self.processes = processes if processes is not None and processes.size > 1 else None
        if self.processes is not None:
            self.stats.processes = self.processes.size
        self.memo: dict[Request, Result] = {}
        if token_budget is None:
            device = str(getattr(backend, "device", "cpu"))
            token_budget = DEFAULT_CUDA_BUDGET if device.startswith("cuda") else DEFAULT_CPU_BUDGET
        self.token_budget = token_budget
        if generation_budget is None:
            generation_budget = backend.generation_token_budget() or token_budget
        self.generation_budget = generation_budget

    def run(self, requests: list[Request], source: str = "requests") -> list[Result]:
        """Answers in the order of `requests`, after the pre-flight (`source` names them in its errors)."""
        self.preflight({source: requests}, describe_source=str)
        answers = self.answer(requests)
        return [answers[r] for r in requests]

    def preflight(
        self, requests_by_source: Mapping[str, Sequence[Request]], describe_source: Callable[[str], str] = task_source
    ) -> dict[str, int]:
        """`mu_eval.preflight.check_context` on this engine's backend, counted in the statistics."""
        truncated = check_context(self.backend, requests_by_source, describe_source)
        self.stats.truncated += sum(truncated.values())
        for source, count in truncated.items():
            self.stats.truncated_by_source[source] = self.stats.truncated_by_source.get(source, 0) + count
        return truncated

    def run_tasks(
        self, requests_by_task: Mapping[str, Sequence[Request]], preflight: bool = True
    ) -> dict[str, list[Result]]:
        """Pool all tasks' requests into one sweep and give each task its answers in its own order; the
        pre-flight runs first unless the caller ran it (`preflight=False`)."""
        if preflight:
            self.preflight(requests_by_task)
        pooled = [r for requests in requests_by_task.values() for r in requests]
        answers = self.answer(pooled)
        return {name: [answers[r] for r in requests] for name, requests in requests_by_task.items()}

    def answer(self, requests: Iterable[Request]) -> dict[Request, Result]:
        requests = list(requests)
        distinct = list(dict.fromkeys(requests))
        self.stats.requested += len(requests)
        self.stats.distinct += len(distinct)
        answers: dict[Request, Result] = {r: self.memo[r] for r in distinct if r in self.memo}
        missing = [r for r in distinct if r not in answers]
        cached = self.cache.get_many(missing) if self.cache is not None and missing else {}
        if self.processes is not None:  # the main process's cache decides, so every process shares one list
            cached = self.processes.broadcast(cached)
        answers.update(cached)
        self.stats.from_cache += len(cached)
        todo = [r for r in distinct if r not in answers]
        self.backend.release(answers)  # what the pre-flight kept for them is not needed
        groups: dict[Any, list[Request]] = defaultdict(list)
        for request in todo:
            groups[_group_key(request)].append(request)
        shares = {key: self._share(group) for key, group in groups.items()}
        own = sum(len(group) for group, _ in shares.values())
        mine: dict[Request, Result] = {}
        failure: Exception | None = None
        try:
            with tqdm(total=own, desc="requests", unit="req", disable=not self.progress or not own) as bar:
                for key, (group, lengths) in shares.items():
                    self.stats.by_kind[key[0]] = self.stats.by_kind.get(key[0], 0) + len(groups[key])
                    for batch, batch_answers in self._answer_group(key[0], group, lengths):
                        new = dict(zip(batch, batch_answers))
                        mine.update(new)
                        if self.cache is not None:
                            self.cache.put_many(new)
                        bar.update(len(batch))
        except Exception as error:
            if self.processes is None:
                raise
            failure = error  # the others learn of it at the gather, instead of waiting there for ever
        answers.update(mine)
        self.stats.answered += len(mine)
        if self.cache is not None:
            self.stats.cache_faults = self.cache.faults
            self.stats.cache_warnings = list(self.cache.notes)
        if self.processes is not None:
            self._gather(todo, mine, answers, failure)
        self.stats.token_budget = self.token_budget
        self.stats.generation_budget = self.generation_budget
        self.memo.update(answers)
        return answers

    def _share(self, group: list[Request]) -> tuple[list[Request], dict[Request, int]]:
        """This process's part of `group` (all of it in a single process) and the lengths of its requests."""
        lengths = {r: self.backend.request_length(r) for r in group}
        if self.processes is None:
            return group, lengths
        share = share_by_tokens([lengths[r] for r in group], self.processes.size)[self.processes.rank]
        mine = [group[i] for i in share]
        return mine, {r: lengths[r] for r in mine}

    def _gather(self, todo: list[Request], mine: dict[Request, Result], answers: dict[Request, Result],
                failure: Exception | None = None) -> None:
        """Every process's answers to every process (by position in `todo`, which all of them share); the main
        process caches the others'. A process that failed sends its error instead, and every process raises."""
        assert self.processes is not None
        position = {request: index for index, request in enumerate(todo)}
        sent: list[tuple[int, int, Any]] = [(self.processes.rank, position[r], a) for r, a in mine.items()]
        if failure is not None:
            sent.append((self.processes.rank, -1, f"{type(failure).__name__}: {failure}"))
        gathered = self.processes.gather(sent)
        failed = [(rank, message) for rank, index, message in gathered if index == -1]
        if failure is not None:
            raise failure
        if failed:
            rank, message = failed[0]
            raise ProcessFailedError(f"data-parallel process {rank} of {self.processes.size} failed while answering "
                                     f"requests ({message.splitlines()[0] if message else 'no message'}); this "
                                     "process stops with it")
        counts = [0] * self.processes.size
        others: dict[Request, Result] = {}
        for rank, index, answer in gathered:
            counts[rank] += 1
            if rank != self.processes.rank:
                others[todo[index]] = answer
        answers.update(others)
        self.backend.release(others)  # what this process's pre-flight kept for them
        self.stats.answered += len(others)
        previous = self.stats.answered_by_process or [0] * self.processes.size
        self.stats.answered_by_process = [a + b for a, b in zip(previous, counts)]
        if self.cache is not None and others:
            self.cache.put_many(others)

    def _answer_group(self, kind: str, group: list[Request], lengths: dict[Request, int]):
        ordered = sorted(group, key=lambda r: -lengths[r])
        cursor = 0
        while cursor < len(ordered):
            batch = self._next_batch(kind, ordered, cursor, lengths)
            try:
                batch_answers = self.backend.answer(kind, batch)
            except Exception as error:
                if self.batch_size != "auto" or not _is_out_of_memory(error) or len(batch) == 1:
                    raise
                self._back_off(kind)
                continue
            self.stats.batches += 1
            cursor += len(batch)
            yield batch, batch_answers

    def _next_batch(self, kind: str, ordered: list[Request], cursor: int, lengths: dict[Request, int]) -> list[Request]:
        if self.batch_size != "auto":
            return ordered[cursor : cursor + int(self.batch_size)]
        if self.backend.batches_itself(kind):
            return ordered[cursor:]
        generation = kind == "generate"
        budget = self.generation_budget if generation else self.token_budget
        longest = max(lengths[ordered[cursor]], 1)
        rows = max(1, min(budget // longest, MAX_GENERATION_ROWS_AUTO if generation else MAX_ROWS_AUTO))
        return ordered[cursor : cursor + rows]

    def _back_off(self, kind: str) -> None:
        import torch

        self.stats.oom_backoffs += 1
        if kind == "generate":
            self.generation_budget = max(1, self.generation_budget // 2)
        else:
            self.token_budget = max(1, self.token_budget // 2)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def _group_key(request: Request) -> tuple:
    if isinstance(request, Generate):
        return (request.kind, request.max_new_tokens, request.stop)
    return (request.kind,)
