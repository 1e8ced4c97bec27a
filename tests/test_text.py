"""The text chapter's package: books, tokenizer, causal model, per-character scores,
splicing."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import RUN

from ood_utils import cache, text
from ood_utils.data import DataNotFoundError
from ood_utils.models import Ensemble


def test_tokenizer_round_trips_and_names_unknown_characters():
    tok = text.CharTokenizer.from_text("hello world\n")
    s = "low hold\nwell"
    assert tok.decode(tok.encode(s)) == s
    assert len(tok) == len(set("hello world\n"))
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tok.encode("héllo")


def test_normalise_maps_typography_and_strips_accents():
    out, dropped = text.normalise(
        "«\u00a0Déjà\u00a0» \u2014 l\u2019été\u2026 Straße þe"
    )
    assert out == '" Deja " -- l\'ete... Strasse the' and dropped == 0
    kept, dropped = text.normalise("abcXYZ", vocab="abc")
    assert kept == "abc" and dropped == 3


def _tiny(identical: bool = False, context: int = 16) -> Ensemble:
    cfg = text.TextConfig(
        context=context,
        d_model=16,
        n_layers=2,
        n_heads=2,
        steps=1,
        identical_init=identical,
    )
    return text.make_twins(cfg, vocab_size=12).eval()


def test_the_model_is_causal():
    model = _tiny()[0]
    idx = torch.randint(0, 12, (3, 16), generator=torch.Generator().manual_seed(0))
    changed = idx.clone()
    changed[:, 9] = (changed[:, 9] + 1) % 12  # change the 10th character
    with torch.no_grad():
        a, b = model(idx), model(changed)
    # earlier predictions unchanged
    torch.testing.assert_close(a[:, :9], b[:, :9], atol=1e-6, rtol=0)
    assert not torch.allclose(a[:, 9:], b[:, 9:])  # later ones change


def test_model_rejects_too_long_or_badly_shaped_input():
    model = _tiny()[0]
    with pytest.raises(ValueError, match="exceeds the context"):
        model(torch.zeros(1, 17, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(B, T\)"):
        model(torch.zeros(17, dtype=torch.long))


def test_twin_score_is_zero_for_identical_members_and_positive_otherwise():
    tok = text.CharTokenizer("abcdefghij \n")
    s = "abc defg hij\nabc ab cd ef gh ij\n" * 3
    same = text.score_text(_tiny(identical=True), tok, s)
    assert torch.equal(same.twin, torch.zeros(len(s)))
    diff = text.score_text(_tiny(), tok, s)
    assert diff.twin[0] == 0 and (diff.twin[1:] > 0).all() and (diff.nll[1:] > 0).all()


def test_score_text_gives_each_character_the_prediction_of_its_longest_history():
    twins = _tiny(context=16)
    tok = text.CharTokenizer("abcdefghij \n")
    s = ("abcdef ghij \n" * 5)[:50]
    sc = text.score_text(twins, tok, s, normalise_text=False)
    ids = tok.encode(s)
    for c in (1, 15, 20, 31, 49):  # recompute character c from its own window
        start = 0 if c < 16 else ((c - 8) // 8) * 8
        window = ids[start : start + 16].unsqueeze(0)
        with torch.no_grad():
            lp = twins(window)[:, 0, c - start - 1]
        nll = -lp[0, ids[c]]
        assert sc.nll[c] == pytest.approx(float(nll), abs=1e-5)
        assert c - start >= 8 or start == 0  # at least half a context of history


def test_splice_records_the_offsets_of_every_insert():
    host = "\n\n".join(f"host paragraph {i} " + "x" * 30 for i in range(10))
    inserts = ["first insert\nover two lines", "second insert", "third"]
    out, spans = text.splice(host, inserts, seed=1)
    assert [out[a:b] for a, b in spans] == inserts
    rest = out
    for a, b in reversed(spans):
        rest = rest[:a] + rest[b + 2 :]  # remove insert and its blank line
    assert rest == host
    assert text.splice(host, inserts, seed=1) == (out, spans)
    with pytest.raises(ValueError, match="boundaries"):
        text.splice("no breaks here", ["a", "b"])


def test_paragraphs_cover_the_text_in_bounded_spans():
    s = "\n".join(f"word{i}" for i in range(500))  # a word list: no blank lines
    spans = text.paragraphs(s, min_chars=100, max_chars=300)
    assert spans[0][0] == 0 and all(
        a == prev_b for (a, _), (_, prev_b) in zip(spans[1:], spans)
    )
    assert all(100 <= b - a <= 300 + 20 for a, b in spans)
    with pytest.raises(ValueError):
        text.paragraphs(s, min_chars=0)


def test_smooth_and_segments():
    v = torch.tensor([0.0, 0, 0, 3, 3, 3, 0, 0])
    torch.testing.assert_close(text.smooth(v, 1), v.double())
    assert text.smooth(v, 3)[4] == pytest.approx(3.0)
    assert list(text.segments(v > 1)) == [(3, 6)]


def test_unknown_book_and_profile_text_settings():
    with pytest.raises(ValueError, match="unknown book"):
        text.load_book("moby_dick")
    cfg = text.TextConfig.from_profile("full")
    assert (
        cfg.n_layers == 6 and cfg.context > text.TextConfig.from_profile("fast").context
    )


def test_every_book_ships_with_the_package_and_matches_its_checksum(tmp_path):
    """No data root needed: each book is read from the package's xz copy and checked."""
    for name, book in text.BOOKS.items():
        assert text.packaged_book(name).is_file(), (
            f"ood_utils/corpus/{book.file}.xz is missing"
        )
        # tmp_path has no text/: the package's copy
        raw = text.load_book(name, root=tmp_path)
        assert len(raw) > 10_000
    # sources and licences
    assert (Path(text.__file__).parent / "corpus" / "MANIFEST.md").is_file()


def test_a_copy_under_the_data_root_overrides_the_package_and_is_checked(tmp_path):
    (tmp_path / "text").mkdir()
    packaged = text.load_book("alice_en", root=tmp_path)
    dst = text.book_path("alice_en", tmp_path)
    dst.write_text(packaged)
    assert text.load_book("alice_en", root=tmp_path) == packaged
    dst.write_bytes(packaged.encode()[:-10] + b"tampered!\n")
    with pytest.raises(
        text.ChecksumError, match=r"SHA-256.*restore the original, or delete it"
    ):
        text.load_book("alice_en", root=tmp_path)


def test_a_corrupt_or_missing_package_copy_says_what_to_do(tmp_path, monkeypatch):
    corrupt = tmp_path / "corrupt.xz"
    corrupt.write_bytes(b"not xz at all")
    monkeypatch.setattr(text, "packaged_book", lambda name: corrupt)
    with pytest.raises(text.ChecksumError, match="is corrupt.*reinstall ood-utils"):
        text.load_book("alice_en", root=tmp_path)
    monkeypatch.setattr(text, "packaged_book", lambda name: tmp_path / "absent.xz")
    with pytest.raises(DataNotFoundError, match="neither at .* nor in the package"):
        text.load_book("alice_en", root=tmp_path)


def test_text_twins_are_cached_and_reloaded(monkeypatch, tmp_path, capsys):
    run = RUN.replace(cache_dir=tmp_path)
    cfg = text.TextConfig(
        context=16, d_model=16, n_layers=1, n_heads=2, steps=3, batch_size=4
    )
    a, corpus, hist = cache.get_text_twins(cfg, run, progress=False)
    b, _, _ = cache.get_text_twins(cfg, run, progress=True)
    assert "loaded cached" in capsys.readouterr().out
    assert len(hist.losses) == 1 and hist.seconds > 0 and hist.device == "cpu"
    assert all(
        torch.equal(x, y)
        for x, y in zip(a.state_dict().values(), b.state_dict().values())
    )
    assert corpus.held_out.startswith("Chapter 55")
    path = next(tmp_path.glob("text-*.pt"))
    path.write_bytes(b"truncated")
    cache.get_text_twins(cfg, run, progress=False)
    assert "unusable" in capsys.readouterr().out


def test_excerpt_and_compose():
    s = "".join(f"paragraph {i}\nsecond line\n\n" for i in range(200))
    piece = text.excerpt(s, 300, at=0.5)
    assert piece in s and piece.startswith("paragraph") and 150 < len(piece) <= 300
    doc, spans = text.compose(
        [("en", "hello there\n"), ("fr", "bonjour\n\n"), ("en", "bye")]
    )
    assert [(doc[a:b], label) for a, b, label in spans] == [
        ("hello there", "en"),
        ("bonjour", "fr"),
        ("bye", "en"),
    ]


def test_line_spans_skip_short_lines():
    s = "a long enough line\nhi\n\nanother one here\n"
    spans = text.line_spans(s, min_chars=5)
    assert [s[a:b] for a, b in spans] == ["a long enough line", "another one here"]
