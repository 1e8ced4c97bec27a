"""Chapter 2 against the original: its twins (``mnist_multi``, Experiment 1), trained
under its protocol and this chapter's."""

from __future__ import annotations

import torch

from .. import cache, data, replication, train
from ..models import predict_log_probs
from ..run import Run
from . import Section

PROTOCOL = """\
**What the original did.** Its twins (`mnist_multi`, the twins of its attacks) trained
exactly like this chapter's: one Adadelta optimiser over both networks at learning
rate 1.0, the sum of their losses, the learning rate multiplied by 0.7 after each
epoch, batches of 64, 14 epochs on all 60,000 images. Two details differ. Its CNN,
PyTorch's MNIST example of early 2020 (published notebook, cell 5), has no ReLU
between the second convolution and the max-pool, and drops whole channels after it
(`nn.Dropout2d`), where the book's drops single activations; and its random numbers
came from one global generator, where each twin here has streams of its own (the same
distribution, but reproducible member by member). The original prints three numbers of
these twins: their reference, 0.0069 nats (cell 19), and the two attacks on them
(cells 23 and 25, chapter 4); cell numbers are 0-based positions in the published
`.ipynb`.

**A ladder** from the original's network, trained with the profile's small "sweep"
budget, to this chapter's twins:"""


def section(
    run: Run,
    *,
    test: data.ImageData,
    sets: dict[str, torch.Tensor],
    accuracy: list[float],
) -> Section:
    """Chapter 2's section, from its MNIST test split, the image sets it compares
    agreement on (name -> images), and its twins' test accuracies."""

    def row(factors: dict) -> dict:
        cfg = replication.train_config(factors, profile=run.profile)
        pair = cache.get_ensemble(cfg, run, progress=False)[0]
        accs = train.accuracy(pair, test.images, test.labels)
        out = {f"twin {m + 1} test accuracy": a for m, a in enumerate(accs)}
        for name, images in sets.items():
            pred = predict_log_probs(pair, images).argmax(-1)
            out[f"agree: {name}"] = float((pred[0] == pred[1]).double().mean())
        return out

    ladder = replication.ladder(
        {
            **replication.protocol_factors("E1", "original", scoring=False),
            "budget": "sweep",
        },
        [
            replication.NETWORK_STEP,
            replication.Step("the book's training budget", "scale", {"budget": "main"}),
        ],
        row,
        end=replication.protocol_factors("E1", "book", scoring=False),
    )
    assert ladder["twin 1 test accuracy"].iloc[-1] == accuracy[0]  # the chapter's twins
    out = Section()
    out.say(PROTOCOL)
    out.show(ladder.style.format({c: "{:.1%}" for c in ladder.columns[2:]}))
    noise = ladder["agree: uniform noise"]
    out.say(
        "The original's twins reach "
        f"**{ladder['twin 1 test accuracy'].iloc[0]:.1%}** and "
        f"**{ladder['twin 2 test accuracy'].iloc[0]:.1%}** test accuracy at this "
        f"budget, and agree on the class of **{noise.iloc[0]:.0%}** of the noise "
        f"images; the book's CNN gives **{noise.iloc[1]:.0%}**, and this chapter's "
        f"twins, trained longer, **{noise.iloc[-1]:.0%}**."
        + (
            " How the twins extrapolate to noise depends on their training, not only "
            "on their initialisation."
            if noise.max() - noise.min() > 0.2
            else ""
        )
    )
    out.tables = {"ladder": ladder.reset_index()}
    return out
