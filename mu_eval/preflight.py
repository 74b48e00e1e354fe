"""The pre-flight: every request of a sweep is checked against the model's context before any is answered.

A request that does not fit, and whose benchmark defines no truncation, stops the run with one line that
names the task, the request (its position and the start of its text) and the lengths, before any forward
pass; a request its benchmark's rule cuts (`Truncation`) is counted per task. The backend says how a request
fits (`Backend.fit`); this module only walks the requests and words the error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from mu_eval.backend import Backend, ContextLengthError, Fit
from mu_eval.requests import Choose, Generate, Request, Score, VisualGenerate

EXCERPT = 40


def excerpt(text: str, size: int = EXCERPT) -> str:
    """The start of a text, quoted, for an error message."""
    return repr(text[:size] + ("…" if len(text) > size else ""))


def describe_request(request: Request) -> str:
    """The request's kind and the start of its text."""
    if isinstance(request, Score):
        return f"score, context {excerpt(request.context)} + continuation {excerpt(request.continuation)}"
    if isinstance(request, Generate | VisualGenerate):
        return f"{request.kind}, prompt {excerpt(request.prompt)}"
    if isinstance(request, Choose):
        return f"choose, context {excerpt(request.context)}"
    return request.kind


def task_source(name: str) -> str:
    return f"task {name!r}"


def check_context(
    backend: Backend,
    requests_by_source: Mapping[str, Sequence[Request]],
    describe_source: Callable[[str], str] = task_source,
) -> dict[str, int]:
    """How many requests each source (a task, an attack) has that its truncation rule cuts, for the sources
    whose requests carry a rule; raises `ContextLengthError` naming the first request that does not fit (and
    how many more do not) before the caller answers any."""
    outcomes: dict[Request, Fit | ContextLengthError] = {}
    truncated: dict[str, int] = {}
    failures: list[tuple[str, int, int, Request, ContextLengthError]] = []
    for source, requests in requests_by_source.items():
        count, ruled = 0, False
        for position, request in enumerate(requests):
            outcome = outcomes.get(request)
            if outcome is None:
                try:
                    outcome = backend.fit(request)
                except ContextLengthError as error:
                    outcome = error
                outcomes[request] = outcome
            ruled = ruled or getattr(request, "truncation", None) is not None
            if isinstance(outcome, ContextLengthError):
                failures.append((source, position, len(requests), request, outcome))
            elif outcome.truncated:
                count += 1
        if ruled:
            truncated[source] = count
    if failures:
        source, position, total, request, first = failures[0]
        message = f"{describe_source(source)}: request {position + 1} of {total} ({describe_request(request)}): {first}"
        if len(failures) > 1:
            longest = max(failure[4].needed for failure in failures)
            message += f"; {len(failures) - 1} more requests of this run do not fit (the longest needs {longest})"
        raise ContextLengthError(message, first.needed, first.context)
    return truncated
