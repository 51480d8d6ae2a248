"""One error hierarchy for llmlab.

Every error a user can cause or meet is a :class:`LabError`; the CLI prints its message as one line and
exits non-zero, without a traceback. Transient backend failures carry what the retry layer needs
(``retry_after``) so that retry policy stays outside each backend.
"""

from __future__ import annotations


class LabError(Exception):
    """Root of every llmlab error. ``str(err)`` is the one line shown to a user."""

    exit_code = 1


class ConfigError(LabError):
    """A bad configuration value, key, or command-line parameter."""

    exit_code = 2


class UnknownNameError(ConfigError):
    """A registry lookup for a name that is not registered."""


class DataError(LabError):
    """A data file is missing, unreadable or malformed (the message names file and row)."""


class ParseError(LabError):
    """Model output (or a judge's output) could not be parsed."""


class MissingExtraError(LabError):
    """An optional dependency is not installed; the message carries the pip hint."""

    def __init__(self, package: str, extra: str, feature: str = "") -> None:
        what = f" for {feature}" if feature else ""
        super().__init__(
            f"'{package}' is needed{what} but is not installed. Install it with: pip install 'llmlab[{extra}]'"
        )
        self.package = package
        self.extra = extra


class UnsupportedFeatureError(LabError):
    """A backend was asked for something it cannot do (e.g. logprobs, raw completion)."""


class BudgetExceededError(LabError):
    """The usage ledger's budget (``on_budget='stop'``) was exhausted."""


class BackendError(LabError):
    """A backend call failed.

    Args:
        message: What went wrong.
        status: HTTP status code when there is one.
        retryable: Whether the retry layer may try again.
        retry_after: Seconds the server asked us to wait, if it said.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after


class RateLimitError(BackendError):
    """HTTP 429 (or a backend's equivalent). Always retryable."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message, status=429, retryable=True, retry_after=retry_after)


class BackendTimeoutError(BackendError):
    """The call did not answer in time. Retryable."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=True)


class BackendConnectionError(BackendError):
    """The server could not be reached. Retryable (a server may be restarting)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=True)


class ContextWindowExceededError(LabError):
    """A prompt would not fit the model's context window.

    Args:
        prompt_tokens: Tokens the prompt would take.
        max_new_tokens: Tokens asked for the completion.
        context_length: The model's window.
    """

    def __init__(self, prompt_tokens: int, max_new_tokens: int, context_length: int, what: str = "prompt") -> None:
        super().__init__(
            f"{what} needs {prompt_tokens} tokens + {max_new_tokens} for the answer, "
            f"but the context window is {context_length}; shorten the input or lower max_tokens"
        )
        self.prompt_tokens = prompt_tokens
        self.max_new_tokens = max_new_tokens
        self.context_length = context_length
