"""Async core, sync edge: ``run_sync`` for the CLI and notebooks, ``gather`` with a concurrency bound."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, TypeVar

import anyio

T = TypeVar("T")


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from synchronous code."""

    async def _main() -> T:
        return await coro

    return anyio.run(_main)


async def gather(fns: Sequence[Callable[[], Awaitable[T]]], limit: int | None = None) -> list[T]:
    """Run the thunks concurrently (at most ``limit`` at once) and return results in order.

    The first exception cancels the rest and propagates as itself (not wrapped in an exception group;
    a LabError is preferred when several fail).

    Example:
        >>> async def one() -> int: return 1
        >>> run_sync(gather([one, one], limit=1))
        [1, 1]
    """
    results: list[Any] = [None] * len(fns)
    limiter = anyio.Semaphore(limit, fast_acquire=True) if limit else None

    async def _run(i: int, fn: Callable[[], Awaitable[T]]) -> None:
        if limiter is None:
            results[i] = await fn()
        else:
            async with limiter:
                results[i] = await fn()

    try:
        async with anyio.create_task_group() as tg:
            for i, fn in enumerate(fns):
                tg.start_soon(_run, i, fn)
    except BaseExceptionGroup as group:
        raise first_error(group) from None
    return results


def first_error(group: BaseExceptionGroup) -> BaseException:
    """The first LabError inside a (nested) exception group, else the first leaf exception.

    Task groups wrap errors in groups; callers and the CLI want the one error that explains the failure.
    """
    from llmlab.core.errors import LabError

    leaves: list[BaseException] = []

    def walk(g: BaseExceptionGroup) -> None:
        for e in g.exceptions:
            if isinstance(e, BaseExceptionGroup):
                walk(e)
            else:
                leaves.append(e)

    walk(group)
    for e in leaves:
        if isinstance(e, LabError):
            return e
    return leaves[0] if leaves else group
