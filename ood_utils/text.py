"""Text: the books, a character tokenizer, twin character-level transformers,
per-character scores.

The books travel with the package, xz-compressed (``ood_utils/corpus``, described with
their sources and licences in its MANIFEST.md); a copy under ``<data root>/text/``
overrides them. Each is checked against its SHA-256 before use. Typography is normalised
(curly quotes, dashes, guillemets to ASCII; accents stripped; a few letters
transliterated) so that a model trained on a plain-ASCII English book measures
*language*, not punctuation; characters still unknown to the tokenizer are dropped and
counted.

Shapes: token ids ``(B, T)``; a member's logits ``(B, T, V)``; the twins'
log-probabilities ``(N, B, T, V)``; per-character scores ``(L,)`` for a text of ``L``
characters."""

from __future__ import annotations

import hashlib
import importlib.resources
import lzma
import re
import time
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import scores
from .configs import KeyedConfig
from .data import DataNotFoundError
from .models import Ensemble, RandomStreams
from .profiles import Profile, get_profile
from .progress import progress_bar
from .run import Run, default_folder
from .train import joint_steps

# --- The books
# ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Book:
    """One text file of the corpus: its file name, label and SHA-256 (from
    MANIFEST.md)."""

    file: str
    title: str
    language: str
    sha256: str


BOOKS: dict[str, Book] = {
    "pride_and_prejudice": Book(
        "english_pride_and_prejudice.txt",
        "Pride and Prejudice",
        "English",
        "be0741c8398bb85781a8d31bba55fbdb72c53a6f5d931d6214db3f61ac269604",
    ),
    "alice_en": Book(
        "english_alice_in_wonderland.txt",
        "Alice's Adventures in Wonderland",
        "English",
        "1e8ea426b77436fd7800aaa7db788ea06200d8f566cb1a7bd361c67adc835740",
    ),
    "sherlock_holmes": Book(
        "english_sherlock_holmes.txt",
        "The Adventures of Sherlock Holmes",
        "English",
        "95c1b14700581aa60908e0d88bb5b021cfe4fe951c54fe1722f8810f7f9fcb66",
    ),
    "madame_bovary": Book(
        "french_madame_bovary.txt",
        "Madame Bovary",
        "French",
        "8431a782c943589fb383dc7b3e497477dfe862dde1acfbdb2b2fedce95971f0e",
    ),
    "alice_fr": Book(
        "french_alice_au_pays_des_merveilles.txt",
        "Alice au pays des merveilles",
        "French",
        "3e5621d1c05d24273b382127ab69275f7e290c8f874161b496c9e4ed55cc7234",
    ),
    "die_verwandlung": Book(
        "german_die_verwandlung.txt",
        "Die Verwandlung",
        "German",
        "eddab7faef45e79aadb48f00d6dada4d958403c2cb688208095f6878a7f13edd",
    ),
    "alice_de": Book(
        "german_alice_im_wunderland.txt",
        "Alice im Wunderland",
        "German",
        "58069fdc681710b6dd08aaec100698cdccb78312eb087978afa9aff2f00bc7de",
    ),
    "seadna": Book(
        "irish_seadna.txt",
        "Séadna",
        "Irish",
        "3ffa57387d0ba422884c318a52af69af256e2a8c6c5331d6805e95b1c7427c72",
    ),
    "beowulf": Book(
        "old_english_beowulf_judith.txt",
        "Beowulf; Judith",
        "Old English",
        "f29cbfe7aa018895beedb1ba14beddacca11ab173b31622e96cae501f3560244",
    ),
    "canterbury_tales": Book(
        "middle_english_canterbury_tales_ellesmere.txt",
        "The Canterbury Tales",
        "Middle English",
        "ee429246382bb3e90507be11408ae38844d9019ae5f7f29dea010e4b4ba0eb95",
    ),
    "devils_dictionary": Book(
        "dictionary_devils_dictionary.txt",
        "The Devil's Dictionary",
        "English dictionary",
        "7459904b817ceb98cec1206e19d58551121345228b2e8f7de07baba696bbdbd6",
    ),
    "word_list": Book(
        "wordlist_american_english.txt",
        "SCOWL american-english",
        "English word list",
        "9f513f1ceadb6a01c5485b7dbdfd5118dc66cd70b59cae2851292112d4066a32",
    ),
}


class ChecksumError(ValueError):
    """A book's text does not have the SHA-256 recorded for it (or its compressed copy
    is corrupt)."""


def check_book(name: str) -> Book:
    """The :class:`Book` called ``name``, or ``ValueError`` listing the names."""
    if name not in BOOKS:
        raise ValueError(f"unknown book {name!r}: expected one of {sorted(BOOKS)}")
    return BOOKS[name]


def book_path(name: str, root: str | Path | None = None) -> Path:
    """``<root>/text/<file>``, the copy that overrides the package's; ``root`` is a data
    folder (a chapter's ``run.data_root``; default ``<user cache>/twin-kl/data``)."""
    return (
        (Path(root) if root is not None else default_folder("data"))
        / "text"
        / check_book(name).file
    )


def packaged_book(name: str) -> importlib.resources.abc.Traversable:
    """The package's xz-compressed copy of book ``name``:
    ``ood_utils/corpus/<file>.xz``."""
    return (
        importlib.resources.files("ood_utils")
        / "corpus"
        / f"{check_book(name).file}.xz"
    )


def load_book(name: str, root: str | Path | None = None) -> str:
    """The raw text of book ``name`` (UTF-8), after checking its SHA-256.

    Read from ``<root>/text/<file>`` when that file exists (see :func:`book_path`), else
    from the copy that ships with the package.

    Raises:
        ValueError: unknown name.
        DataNotFoundError: neither copy exists (the package was installed without its
            corpus).
        ChecksumError: the text is modified or truncated, or the package's copy is
            corrupt.
    """
    book = check_book(name)
    path = book_path(name, root)
    if path.exists():
        payload, where = path.read_bytes(), str(path)
        fix = "restore the original, or delete it to use the package's copy"
    else:
        packaged = packaged_book(name)
        where = f"the package's copy ood_utils/corpus/{book.file}.xz"
        fix = f"reinstall ood-utils, or put the original file at {path}"
        try:
            compressed = packaged.read_bytes()
        except FileNotFoundError as err:
            raise DataNotFoundError(
                f"{book.file} is neither at {path} nor in the package ({where} is "
                f"missing): {fix}"
            ) from err
        try:
            payload = lzma.decompress(compressed)
        except lzma.LZMAError as err:
            raise ChecksumError(f"{where} is corrupt ({err}): {fix}") from err
    digest = hashlib.sha256(payload).hexdigest()
    if digest != book.sha256:
        raise ChecksumError(
            f"{where} has SHA-256 {digest}, expected {book.sha256}: the text is "
            f"modified or truncated; {fix}"
        )
    return payload.decode("utf-8")


#: Typographic characters and letters outside ASCII mapped to what the English
#: book uses.
TYPOGRAPHY = {
    "\u2018": "'",
    "\u2019": "'",
    "\u201a": "'",
    "\u2032": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u201e": '"',
    "\u00ab": '"',
    "\u00bb": '"',
    "\u2039": "'",
    "\u203a": "'",
    "\u2013": "--",
    "\u2014": "--",
    "\u2015": "--",
    "\u2026": "...",
    "\u00a0": " ",
    "\u202f": " ",
    "\u00e6": "ae",
    "\u00c6": "Ae",
    "\u0153": "oe",
    "\u0152": "Oe",
    "\u00df": "ss",
    "\u00fe": "th",
    "\u00de": "Th",
    "\u00f0": "th",
    "\u00d0": "Th",
}
_TYPO_RE = re.compile("|".join(map(re.escape, TYPOGRAPHY)))


def normalise(text: str, vocab: str | None = None) -> tuple[str, int]:
    """Map typography to ASCII, strip accents, and (with ``vocab``) drop characters not
    in it.

    Returns ``(text, n_dropped)``.
    """
    text = _TYPO_RE.sub(lambda m: TYPOGRAPHY[m.group()], text)
    text = "".join(
        c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)
    )
    if vocab is None:
        return text, 0
    keep = set(vocab)
    kept = "".join(c for c in text if c in keep)
    return kept, len(text) - len(kept)


def split_chapters(text: str, held_out_from: int) -> tuple[str, str]:
    """Split a book at the heading ``Chapter <held_out_from>``: ``(before, from there
    on)``."""
    m = re.search(rf"^Chapter {held_out_from}\s*$", text, flags=re.MULTILINE)
    if m is None:
        raise ValueError(f"no line 'Chapter {held_out_from}' in the text")
    return text[: m.start()], text[m.start() :]


# --- Tokenizer
# ------------------------------------------------------------------------------


class CharTokenizer:
    """Characters <-> integer ids over a fixed vocabulary (the training text's
    characters)."""

    def __init__(self, vocab: str) -> None:
        chars = sorted(set(vocab))
        if len(chars) < 2:
            raise ValueError("a vocabulary needs at least 2 distinct characters")
        self.chars = "".join(chars)
        self.index = {c: i for i, c in enumerate(chars)}

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        return cls(text)

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> torch.Tensor:
        """``(L,)`` int64 ids; ``ValueError`` naming the characters outside the
        vocabulary."""
        unknown = sorted(set(text) - set(self.index))
        if unknown:
            raise ValueError(
                f"characters outside the vocabulary: {unknown[:20]!r} (normalise the "
                "text with the tokenizer's chars first)"
            )
        return torch.tensor([self.index[c] for c in text], dtype=torch.long)

    def decode(self, ids: torch.Tensor | list[int]) -> str:
        return "".join(self.chars[int(i)] for i in ids)


# --- The model
# ------------------------------------------------------------------------------


class CharTransformer(nn.Module):
    """A small causal transformer over characters: embeddings, ``n_layers`` pre-norm
    ``nn.TransformerEncoderLayer`` blocks with a causal mask, and a linear head.

    Shapes: ``idx: (B, T)`` with ``T <= context`` -> logits ``(B, T, vocab_size)``;
    position ``t`` sees characters ``0..t`` only."""

    def __init__(
        self,
        vocab_size: int,
        context: int = 128,
        d_model: int = 128,
        n_layers: int = 2,
        n_heads: int = 4,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(
                f"d_model ({d_model}) must be divisible by n_heads ({n_heads})"
            )
        self.context = context
        self.tok = nn.Embedding(vocab_size, d_model)
        self.pos = nn.Embedding(context, d_model)
        layer = nn.TransformerEncoderLayer(
            d_model,
            n_heads,
            4 * d_model,
            dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.blocks = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size)
        self.register_buffer(
            "mask",
            nn.Transformer.generate_square_subsequent_mask(context),
            persistent=False,
        )

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        if idx.ndim != 2:
            raise ValueError(f"idx must have shape (B, T), got {tuple(idx.shape)}")
        t = idx.shape[1]
        if t > self.context:
            raise ValueError(f"sequence length {t} exceeds the context {self.context}")
        h = self.tok(idx) + self.pos(torch.arange(t, device=idx.device))
        h = self.blocks(h, mask=self.mask[:t, :t], is_causal=True)
        return self.head(self.norm(h))


# --- Training and the cache
# -----------------------------------------------------------------


@dataclass(frozen=True)
class TextSettings:
    """What the text chapter trains and scores in a profile: the model's fields of
    :class:`TextConfig` (size, steps, batch) and how many characters of each text it
        scores."""

    model: dict[str, int]
    chars: int


#: The text chapter's settings in each compute profile (:mod:`ood_utils.profiles`).
PROFILE_SETTINGS: dict[str, TextSettings] = {
    "fast": TextSettings(
        {
            "context": 64,
            "d_model": 96,
            "n_layers": 2,
            "n_heads": 4,
            "steps": 1200,
            "batch_size": 16,
        },
        chars=20_000,
    ),
    "full": TextSettings(
        {
            "context": 256,
            "d_model": 384,
            "n_layers": 6,
            "n_heads": 6,
            "steps": 10_000,
            "batch_size": 64,
        },
        chars=200_000,
    ),
}

#: Bumped whenever the text training code changes in a way that changes the weights.
TEXT_FORMAT_VERSION = 1


@dataclass(frozen=True)
class TextConfig(KeyedConfig):
    """Everything that determines a trained pair of character models (and its cache
    key, :meth:`~ood_utils.configs.KeyedConfig.key` with :data:`TEXT_FORMAT_VERSION`).

    The training text is ``book`` up to the heading ``Chapter <held_out_from>``; the
    rest of the book is held out as English test text."""

    book: str = "pride_and_prejudice"
    held_out_from: int = 55
    n_members: int = 2
    context: int = 64
    d_model: int = 96
    n_layers: int = 2
    n_heads: int = 4
    dropout: float = 0.1
    steps: int = 1200
    batch_size: int = 16
    lr: float = 2e-3
    seed: int = 0
    identical_init: bool = False

    format_version: ClassVar[int] = TEXT_FORMAT_VERSION

    def __post_init__(self) -> None:
        check_book(self.book)
        if (
            self.n_members < 1
            or self.steps < 1
            or self.batch_size < 1
            or self.context < 2
        ):
            raise ValueError(
                "n_members, steps and batch_size must be positive and context >= 2"
            )

    @classmethod
    def from_profile(cls, profile: Profile | str, **overrides: object) -> TextConfig:
        """The text config of ``profile`` (or its name, see :data:`PROFILE_SETTINGS`),
        with ``overrides`` applied."""
        settings = PROFILE_SETTINGS[get_profile(profile).name]
        return cls(**{**settings.model, **overrides})  # type: ignore[arg-type]


@dataclass
class TextHistory:
    """A training run: the summed loss every 50 steps, its duration and device."""

    losses: list[float]
    seconds: float
    device: str


@dataclass
class TextCorpus:
    """The training book, split and encoded. ``train``/``held_out`` are normalised
    strings."""

    tokenizer: CharTokenizer
    train: str
    held_out: str
    train_ids: torch.Tensor = field(repr=False)


def training_corpus(config: TextConfig, root: str | Path | None = None) -> TextCorpus:
    """Load, normalise and split the training book; the vocabulary is the training
    part's characters."""
    text, _ = normalise(load_book(config.book, root))
    train, held_out = split_chapters(text, config.held_out_from)
    tok = CharTokenizer.from_text(train)
    held_out, _ = normalise(held_out, tok.chars)
    return TextCorpus(
        tokenizer=tok, train=train, held_out=held_out, train_ids=tok.encode(train)
    )


def make_twins(config: TextConfig, vocab_size: int) -> Ensemble:
    """Fresh members, ``forward(idx) -> log-probabilities (N, B, T, V)``; member ``i``
    initialised from ``seed + i`` (or all from ``seed``). The global generators are left
    as they were."""
    seeds = [
        config.seed if config.identical_init else config.seed + i
        for i in range(config.n_members)
    ]
    return Ensemble.from_seeds(
        lambda: _member(config, vocab_size), seeds, check_input=None
    )


def _member(config: TextConfig, vocab_size: int) -> CharTransformer:
    return CharTransformer(
        vocab_size,
        config.context,
        config.d_model,
        config.n_layers,
        config.n_heads,
        config.dropout,
    )


def dropout_stream(
    config: TextConfig, vocab_size: int, device: torch.device
) -> RandomStreams:
    """The stream the members draw their dropout masks from, in turn, while they train.

    Format 1 of the text twins drew them from the global generator as the last member's
    initialisation left it; this stream starts there (on CUDA: seeded with that member's
    seed), so that cached twins stay valid and the chapter's numbers do not change."""
    last = config.seed if config.identical_init else config.seed + config.n_members - 1
    if device.type == "cuda":
        state = torch.Generator(device=device).manual_seed(last).get_state()
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(last)
            _member(config, vocab_size)
            state = torch.get_rng_state()
    return RandomStreams.shared(state, config.n_members, device)


def random_windows(
    ids: torch.Tensor, batch_size: int, context: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of training windows: inputs ``(B, T)`` and next-character targets ``(B,
    T)``."""
    starts = torch.randint(
        0, ids.numel() - context - 1, (batch_size,), generator=generator
    )
    x = torch.stack([ids[s : s + context] for s in starts.tolist()])
    y = torch.stack([ids[s + 1 : s + context + 1] for s in starts.tolist()])
    return x, y


def train_twins(
    config: TextConfig,
    corpus: TextCorpus,
    run: Run,
    progress: bool = True,
) -> tuple[Ensemble, TextHistory]:
    """Train the members together on the same batches of random windows
    (:func:`ood_utils.train.joint_steps`: summed cross-entropy; here AdamW with a
    one-cycle schedule stepped every step). Returns the twins (eval mode) and the
    :class:`TextHistory`. They train on ``run.device``."""
    device = run.device
    start = time.perf_counter()
    twins = make_twins(config, len(corpus.tokenizer)).to(device).train()
    streams = dropout_stream(config, len(corpus.tokenizer), device)
    opt = torch.optim.AdamW(twins.parameters(), lr=config.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=config.lr, total_steps=config.steps, pct_start=0.1
    )
    gen = torch.Generator().manual_seed(config.seed)
    windows = (
        random_windows(corpus.train_ids, config.batch_size, config.context, gen)
        for _ in progress_bar(
            range(config.steps),
            desc="training text twins",
            progress=progress,
            mininterval=2.0,
        )
    )
    losses: list[float] = []
    for step, (_, loss, _) in enumerate(
        joint_steps(twins, opt, windows, streams, device)
    ):
        sched.step()
        if step % 50 == 0:
            losses.append(float(loss))
    return twins.eval(), TextHistory(losses, time.perf_counter() - start, str(device))


# --- Per-character scores
# -------------------------------------------------------------------


@dataclass(frozen=True)
class CharScores:
    """Scores of each character of a text, predicted from the characters before it.

    Attributes:
        text: the (normalised) text, ``L`` characters.
        twin: ``(L,)`` max directed KL between the members' next-character distributions
            (nats).
        nll: ``(L,)`` member 0's negative log-likelihood of the actual character (nats).
        dropped: characters removed by normalisation (outside the vocabulary).
    The first character has no context and scores 0 in both.
    """

    text: str
    twin: torch.Tensor
    nll: torch.Tensor
    dropped: int = 0


@torch.inference_mode()
def score_text(
    twins: Ensemble,
    tokenizer: CharTokenizer,
    text: str,
    batch_size: int = 64,
    normalise_text: bool = True,
) -> CharScores:
    """Per-character twin scores and NLL for ``text``, with at least half a context of
    history.

    Windows of ``context`` characters overlap by half; each character is scored in the
    window where it has the most history (from the second window on, only the second
    half counts)."""
    dropped = 0
    if normalise_text:
        text, dropped = normalise(text, tokenizer.chars)
    ids = tokenizer.encode(text)
    n = ids.numel()
    if n < 2:
        raise ValueError("the text needs at least 2 characters (after normalisation)")
    context = twins[0].context
    half = context // 2
    starts = list(range(0, max(n - context, 0) + half, half)) if n > context else [0]
    twin_s = torch.zeros(n)
    nll_s = torch.zeros(n)
    device = next(twins.parameters()).device
    for b in range(0, len(starts), batch_size):
        chunk = starts[b : b + batch_size]
        windows = torch.stack(
            [
                F.pad(
                    ids[s : s + context],
                    (0, max(0, context - len(ids[s : s + context]))),
                )
                for s in chunk
            ]
        ).to(device)
        lp = twins(windows)[:, :, :-1]  # predicts positions s+1..s+T-1
        tgt = windows[:, 1:]
        kl = (
            scores.twin_score(lp.flatten(1, 2)).view(len(chunk), -1).cpu()
            if len(twins) > 1
            else None
        )
        nll = -lp[0].gather(-1, tgt.unsqueeze(-1)).squeeze(-1).cpu()
        for j, s in enumerate(chunk):
            first = 0 if s == 0 else half - 1  # offset into the T-1 predictions
            last = min(context - 1, n - 1 - s)
            pos = slice(s + 1 + first, s + 1 + last)
            if kl is not None:
                twin_s[pos] = kl[j, first:last]
            nll_s[pos] = nll[j, first:last]
    return CharScores(text=text, twin=twin_s, nll=nll_s, dropped=dropped)


# --- Paragraphs, splicing, smoothing
# --------------------------------------------------------


def paragraphs(
    text: str, min_chars: int = 200, max_chars: int = 800
) -> list[tuple[int, int]]:
    """Paragraph spans ``(start, end)`` of ``text`` of ``min_chars..max_chars``
    characters.

    Blank lines separate paragraphs; consecutive short ones are merged (a word list or
    verse becomes blocks of lines) and long ones are cut at line ends, so every text
    yields comparable units. Spans cover the text without overlap; a short tail is
    dropped."""
    if not 0 < min_chars <= max_chars:
        raise ValueError(
            f"need 0 < min_chars <= max_chars, got {min_chars}, {max_chars}"
        )
    spans: list[tuple[int, int]] = []
    start = None
    pos = 0
    for line in text.splitlines(keepends=True):
        end = pos + len(line)
        if start is None:
            start = pos
        blank = not line.strip()
        size = end - start
        if (blank and size >= min_chars) or size >= max_chars:
            spans.append((start, end))
            start = None
        pos = end
    if start is not None and pos - start >= min_chars:
        spans.append((start, pos))
    return spans


def line_spans(text: str, min_chars: int = 5) -> list[tuple[int, int]]:
    """Spans ``(start, end)`` of the lines of ``text`` with at least ``min_chars``
    visible characters (the newline excluded)."""
    if min_chars < 1:
        raise ValueError(f"min_chars must be positive, got {min_chars}")
    spans, pos = [], 0
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\n")
        if len(body.strip()) >= min_chars:
            spans.append((pos, pos + len(body)))
        pos += len(line)
    return spans


def paragraph_means(values: torch.Tensor, spans: list[tuple[int, int]]) -> torch.Tensor:
    """Mean of a per-character score over each span: ``(L,) -> (len(spans),)``."""
    return (
        torch.stack([values[a:b].double().mean() for a, b in spans])
        if spans
        else torch.empty(0)
    )


def splice(
    host: str, inserts: list[str], seed: int = 0
) -> tuple[str, list[tuple[int, int]]]:
    """Insert each text of ``inserts`` into ``host`` at a random paragraph boundary.

    Returns the new text and the ``(start, end)`` offsets of every insert in it, in
    order, so that ``text[start:end] == insert``. Inserts are separated from the host by
    blank lines."""
    bounds = [m.end() for m in re.finditer(r"\n\n+", host)]
    if len(bounds) < len(inserts):
        raise ValueError(
            f"the host has {len(bounds)} paragraph boundaries for {len(inserts)} "
            "inserts"
        )
    rng = np.random.default_rng(seed)
    at = sorted(rng.choice(bounds, size=len(inserts), replace=False).tolist())
    out, spans, prev = [], [], 0
    length = 0
    for pos, insert in zip(at, inserts):
        piece = host[prev:pos]
        out.append(piece)
        length += len(piece)
        block = insert.strip("\n")
        spans.append((length, length + len(block)))
        out.append(block + "\n\n")
        length += len(block) + 2
        prev = pos
    out.append(host[prev:])
    return "".join(out), spans


def smooth(values: torch.Tensor, window: int = 64) -> torch.Tensor:
    """Centred moving average of a per-character score ``(L,)`` (edges use the available
    part)."""
    if window < 1:
        raise ValueError(f"window must be positive, got {window}")
    v = values.double().view(1, 1, -1)
    kernel = torch.ones(1, 1, window, dtype=torch.float64)
    total = F.conv1d(F.pad(v, (window // 2, window - 1 - window // 2)), kernel)
    count = F.conv1d(
        F.pad(torch.ones_like(v), (window // 2, window - 1 - window // 2)), kernel
    )
    return (total / count).view(-1)


def to_html(
    text: str,
    values: torch.Tensor,
    vmax: float | None = None,
    cmap: str = "Reds",
    floor: float = 1e-3,
) -> str:
    """``text`` as HTML with each character's background coloured by ``values`` (log
    scale, see
    :func:`ood_utils.plots.log_unit`)."""
    import html

    import matplotlib

    if len(text) != values.numel():
        raise ValueError(f"{len(text)} characters but {values.numel()} values")
    from .plots import log_unit

    colours = matplotlib.colormaps[cmap](log_unit(values, vmax, floor))
    spans = []
    for c, rgba in zip(text, colours):
        colour = matplotlib.colors.to_hex(rgba)
        spans.append(
            "<br>"
            if c == "\n"
            else f'<span style="background:{colour}">{html.escape(c)}</span>'
        )
    return (
        '<div style="font-family:monospace;font-size:12px;line-height:1.4;'
        'white-space:pre-wrap">' + "".join(spans) + "</div>"
    )


def segments(mask: torch.Tensor) -> Iterator[tuple[int, int]]:
    """The ``(start, end)`` runs of ``True`` in a boolean ``(L,)`` mask."""
    m = mask.to(torch.int8).numpy()
    edges = np.flatnonzero(np.diff(np.r_[0, m, 0]))
    yield from zip(edges[0::2].tolist(), edges[1::2].tolist())


def excerpt(text: str, n_chars: int, at: float = 0.3) -> str:
    """About ``n_chars`` characters of ``text`` from the first blank line after fraction
    ``at``.

    Skips front matter and takes whole lines (a deterministic middle slice of a book).
    """
    if n_chars < 1 or not 0 <= at < 1:
        raise ValueError(f"need n_chars >= 1 and 0 <= at < 1, got {n_chars}, {at}")
    start = int(len(text) * at)
    blank = text.find("\n\n", start)
    start = blank + 2 if 0 <= blank < len(text) - n_chars // 2 else start
    piece = text[start : start + n_chars]
    cut = piece.rfind("\n")
    return piece[: cut + 1] if cut > n_chars // 2 else piece


def compose(blocks: list[tuple[str, str]]) -> tuple[str, list[tuple[int, int, str]]]:
    """Join ``(label, text)`` blocks with blank lines; return the document and each
    block's ``(start, end, label)`` so that ``document[start:end]`` is that block's text
    (stripped)."""
    parts, spans, pos = [], [], 0
    for label, block in blocks:
        block = block.strip("\n")
        spans.append((pos, pos + len(block), label))
        parts.append(block + "\n\n")
        pos += len(block) + 2
    return "".join(parts), spans
