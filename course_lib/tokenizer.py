"""The toy world's character tokenizer: one id per character, plus R1's special tags.

DeepSeek-R1 asks its model to think inside ``<think> ... </think>`` and to answer inside
``<answer> ... </answer>`` ([R1] §2.2.1, Table 1; the tags live in :mod:`course_lib.formats`).
TinySeek keeps exactly those tags, each as ONE token, so the later notebooks (distillation, GRPO)
can read and reward the format cheaply.

Simplified: real models use byte-level BPE with ~100-150K tokens; here every printable ASCII
character is a token (about 100 ids), which keeps the embedding table tiny and every sequence
easy to read.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable
from functools import lru_cache

from course_lib.formats import TAGS

PAD, BOS, EOS = "<pad>", "<bos>", "<eos>"
SPECIAL_TOKENS: tuple[str, ...] = (PAD, BOS, EOS, *TAGS)

# Every printable ASCII character except the tab/vertical-tab/form-feed/carriage-return family;
# "\n" is kept so multi-line text round-trips.
DEFAULT_CHARS: str = "".join(c for c in string.printable if c not in "\t\x0b\x0c\r")


class CharTokenizer:
    """Map text to ids one character at a time; special tags written in the text are one id each.

    >>> tok = default_tokenizer()
    >>> tok.decode(tok.encode("<think>1+2=3</think>"))
    '<think>1+2=3</think>'
    >>> len(tok.encode("<answer>"))
    1
    """

    def __init__(self, chars: str = DEFAULT_CHARS, specials: tuple[str, ...] = SPECIAL_TOKENS):
        if len(set(chars)) != len(chars):
            raise ValueError("chars has repeated characters; pass each character once.")
        missing = [s for s in SPECIAL_TOKENS if s not in specials]
        if missing:
            raise ValueError(
                f"specials must include {missing}; the course's notebooks rely on them."
            )
        self.specials: tuple[str, ...] = tuple(specials)
        self.chars: str = chars
        self.itos: list[str] = list(self.specials) + list(chars)
        self.stoi: dict[str, int] = {s: i for i, s in enumerate(self.itos)}
        # Longest special first so "</think>" is not read as "<" + "/think>".
        alternatives = sorted(self.specials, key=len, reverse=True)
        self._special_re = re.compile("(" + "|".join(re.escape(s) for s in alternatives) + ")")

    # --- ids of the special tokens -------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    @property
    def pad_id(self) -> int:
        return self.stoi[PAD]

    @property
    def bos_id(self) -> int:
        return self.stoi[BOS]

    @property
    def eos_id(self) -> int:
        return self.stoi[EOS]

    @property
    def special_ids(self) -> dict[str, int]:
        """``{"<pad>": 0, "<bos>": 1, ...}``."""
        return {s: self.stoi[s] for s in self.specials}

    # --- encode / decode -----------------------------------------------------------------------
    def encode(self, text: str, add_bos: bool = False, add_eos: bool = False) -> list[int]:
        """Text to ids. Special tags inside ``text`` (e.g. ``"<think>"``) become single ids."""
        if not isinstance(text, str):
            raise ValueError(
                f"encode() takes a str, got {type(text).__name__}; decode ids instead?"
            )
        ids: list[int] = [self.bos_id] if add_bos else []
        for part in self._special_re.split(text):
            if not part:
                continue
            if part in self.stoi and part in self.specials:
                ids.append(self.stoi[part])
                continue
            for ch in part:
                idx = self.stoi.get(ch)
                if idx is None:
                    raise ValueError(
                        f"character {ch!r} is not in the vocabulary; use printable ASCII only "
                        "or build CharTokenizer(chars=...) with the characters you need."
                    )
                ids.append(idx)
        if add_eos:
            ids.append(self.eos_id)
        return ids

    def decode(self, ids: Iterable[int], skip_special: bool = False) -> str:
        """Ids to text. ``skip_special=True`` drops every special token (pad, bos, tags...)."""
        if hasattr(ids, "tolist"):
            ids = ids.tolist()
        n_special = len(self.specials)
        out = []
        for i in ids:
            i = int(i)
            if not 0 <= i < self.vocab_size:
                raise ValueError(f"id {i} is outside the vocabulary (0..{self.vocab_size - 1}).")
            if skip_special and i < n_special:
                continue
            out.append(self.itos[i])
        return "".join(out)

    def __len__(self) -> int:
        return self.vocab_size

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size}, specials={list(self.specials)})"


@lru_cache(maxsize=1)
def default_tokenizer() -> CharTokenizer:
    """The course's one tokenizer (the same object every call)."""
    return CharTokenizer()
