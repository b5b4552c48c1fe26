"""Segmentation of comments into terms and phrases (jieba, with the domain's dictionary).

One `Lexicon` object holds its own jieba tokenizer (never jieba's process-wide default), built
from jieba's dictionary, the service terms shipped in `data/service_terms.txt` and the words
administrators added (`topic_word`); the stopwords are `data/stopwords.txt`. A comment's terms
are its distinct words of two characters or more that contain a Chinese character and are no
stopword; its phrases the distinct pairs of neighbouring terms within one clause. Each is
counted once per comment (document frequency), so that one long comment is not a trend.
"""

from __future__ import annotations

import io
import logging
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from typing import Any

import jieba

# jieba announces its dictionary loading on stderr at INFO: the job's log is not the place.
jieba.setLogLevel(logging.WARNING)

# jieba's own block pattern: it segments each run of these characters independently, so a
# clause's words do not depend on the rest of the comment, and can be cached per clause.
_BLOCK = re.compile(r"[\u4E00-\u9FD5a-zA-Z0-9+#&._%\-]+")
_HAN = re.compile(r"[\u4E00-\u9FD5]")
MAX_TERM = 32  # characters of a stored term (a phrase is two terms and a space)
CACHE_LIMIT = 200_000  # clauses remembered by one lexicon


def _data(name: str) -> list[str]:
    text = resources.files("haochaping.topics").joinpath("data", name).read_text("utf-8")
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


def shipped_terms() -> list[str]:
    """The service terms shipped with the package."""
    return [line.split()[0] for line in _data("service_terms.txt")]


def shipped_stopwords() -> frozenset[str]:
    return frozenset(_data("stopwords.txt"))


_BASE_LOCK = threading.Lock()
_base: tuple[dict[str, int], int] | None = None


def _base_dictionary() -> tuple[dict[str, int], int]:
    """jieba's own prefix dictionary and total, built once per process from its word list.

    Not from jieba's marshal cache: `marshal.load` is one C call that holds the GIL for a
    quarter of a second, which would stall the server's event loop even with the build in a
    thread. Reading the list is a second of Python that hands the GIL over every few
    milliseconds; each later lexicon copies the result (15 ms) instead."""
    global _base
    with _BASE_LOCK:
        if _base is None:
            tk: Any = jieba.Tokenizer()
            with tk.get_dict_file() as f:
                # Read whole first: a file read line by line hands the GIL away and takes it
                # back at every block, which restarts the event loop's wait for it (loop
                # starved for 0.4 s at a time, measured).
                words = io.BytesIO(f.read())
            _base = tk.gen_pfdict(words)
        return _base


def forget_base_dictionary() -> None:
    """Drop the process's base dictionary (tests measuring a first build)."""
    global _base
    with _BASE_LOCK:
        _base = None


@dataclass(frozen=True, slots=True)
class Terms:
    """What one comment contributes: its distinct terms and phrases."""

    words: frozenset[str]
    phrases: frozenset[str]


class Lexicon:
    """A jieba tokenizer with the domain's dictionary and stopwords, and a cache of clauses."""

    def __init__(self, extra_words: Iterable[str] = (), *, version: int = 0) -> None:
        self.version = version  # the highest topic_word id it knows (0: none)
        self.stopwords = shipped_stopwords()
        freq, total = _base_dictionary()
        self._tk: Any = jieba.Tokenizer()
        self._tk.FREQ, self._tk.total = dict(freq), total  # add_word below writes to FREQ
        self._tk.initialized = True
        for word in [*shipped_terms(), *extra_words]:
            if word and word not in self.stopwords:
                self._tk.add_word(word)
        self._clauses: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
        self._comments: dict[str, Terms] = {}
        self.hits = 0
        self.misses = 0

    def _clause(self, block: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The terms and phrases of one clause (cached: clauses repeat far more than
        comments do, and jieba segments each clause on its own)."""
        found = self._clauses.get(block)
        if found is not None:
            self.hits += 1
            return found
        self.misses += 1
        words = tuple(
            w[:MAX_TERM]
            for w in self._tk.cut(block, HMM=False)
            if len(w) >= 2 and w not in self.stopwords and _HAN.search(w)
        )
        phrases = tuple(f"{a} {b}" for a, b in zip(words, words[1:], strict=False) if a != b)
        if len(self._clauses) >= CACHE_LIMIT:
            self._clauses.clear()
        self._clauses[block] = found = (words, phrases)
        return found

    def terms(self, text: str | None) -> Terms:
        """The distinct terms and phrases of one comment (cached too: whole comments repeat,
        "排队时间太长" more than any)."""
        text = text or ""
        found = self._comments.get(text)
        if found is not None:
            return found
        words: set[str] = set()
        phrases: set[str] = set()
        for block in _BLOCK.findall(text):
            w, p = self._clause(block)
            words.update(w)
            phrases.update(p)
        if len(self._comments) >= CACHE_LIMIT:
            self._comments.clear()
        self._comments[text] = found = Terms(frozenset(words), frozenset(phrases))
        return found
