"""Keyword handlers: a decorator tags a handler with its words and priority group; the Router collects them.

Groups run in order and the first handler that answers wins (SPEC §4). A handler is called with the
Conversation and the Parsed body and returns an Outcome, or None to let the next one try. Word-tagged
handlers are only tried when the body starts with one of their words (case and accents ignored:
keywords/text.py `fold`); `when` adds a condition. The inbound row is stored before a word-tagged handler
runs; a handler that decides itself stores it (`Conversation.store`) before it writes anything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from functools import cached_property
from types import ModuleType

from bot.pipeline.inbound import Conversation, Outcome
from keywords.text import Parsed, fold, parse

OPT_OUT, OPT_IN, HELP, CONVERSATION, SAVE, CUSTOM, FALLBACK = range(1, 8)
RESERVED_GROUPS = (OPT_OUT, OPT_IN, HELP, SAVE)

HandlerFunc = Callable[[Conversation, Parsed], Outcome | None]
Condition = Callable[[Conversation, Parsed], bool]


@dataclass(frozen=True)
class Spec:
    group: int
    words: tuple[str, ...]
    when: Condition | None

    @cached_property
    def first_words(self) -> frozenset[str]:
        """The first word of each phrase: a body whose first word is not one of them cannot match, so most
        messages skip the handler with one set lookup instead of trying dozens of phrases."""
        return frozenset(phrase.split()[0] for phrase in self.words)


def handles(*words: str, group: int, when: Condition | None = None) -> Callable[[HandlerFunc], HandlerFunc]:
    """Tag a handler with its words (none: it decides itself) and its priority group."""

    def tag(func: HandlerFunc) -> HandlerFunc:
        func.keyword_spec = Spec(group, tuple(dict.fromkeys(fold(w) for w in words)), when)  # type: ignore[attr-defined]
        return func

    return tag


@dataclass(frozen=True)
class Handler:
    func: HandlerFunc
    spec: Spec

    def matched_word(self, message: Parsed) -> str | None:
        if not self.spec.words:
            return ""
        first = message.first_folded(1)
        if not first or first[0] not in self.spec.first_words:
            return None
        return next((word for word in self.spec.words if message.starts_with_folded(word)), None)


class Router:
    """The keyword router: callable on a Conversation, as `bot.pipeline.inbound` expects."""

    def __init__(self, modules: Iterable[ModuleType]) -> None:
        handlers = [
            Handler(value, value.keyword_spec)
            for module in modules
            for value in vars(module).values()
            if callable(value) and hasattr(value, "keyword_spec")
        ]
        self.handlers = sorted(handlers, key=lambda h: h.spec.group)
        owners: dict[str, str] = {}
        for handler in self.handlers:
            for word in handler.spec.words:
                if word in owners:
                    raise ValueError(f"{word.upper()} is claimed by {owners[word]} and {handler.func.__name__}")
                owners[word] = handler.func.__name__

    @property
    def reserved_words(self) -> frozenset[str]:
        """Words no custom keyword may take: opt-out, opt-in, help and SAVE."""
        return frozenset(w for h in self.handlers if h.spec.group in RESERVED_GROUPS for w in h.spec.words)

    def __call__(self, conversation: Conversation) -> Outcome:
        message = parse(conversation.text)
        for handler in self.handlers:
            word = handler.matched_word(message)
            if word is None or (handler.spec.when and not handler.spec.when(conversation, message)):
                continue
            if word:
                conversation.store()  # a handler of its own words acts: see Conversation.store
            outcome = handler.func(conversation, message)
            if outcome is not None:
                return outcome if outcome.keyword or not word else replace(outcome, keyword=word.upper())
        return Outcome(keyword=message.keyword.upper(), outcome="no action")
