"""Checks for the book's exercises: call one on your answer to get a verdict that
explains itself.

Every ``check_*`` function prints a line starting with ``"OK"`` and returns ``True``
when the answer is right, and raises :class:`CheckFailed` (an ``AssertionError``)
whose message says *what* is wrong (a shape, a sign, a direction of the KL, a
threshold that is too strict) when it is not. They test behaviour on inputs the
student did not see, so they cannot be passed by printing the expected number.

Score functions follow the package's conventions (:mod:`ood_utils.scores`):
stacked log-probabilities ``log_probs: (N, B, C)`` in, one score per input
``(B,)`` out, higher = more out-of-distribution.

Example::

    from ood_utils import checks

    def my_symmetric_kl(log_probs):          # (2, B, C) -> (B,)
        ...
    checks.check_symmetric_kl(my_symmetric_kl)
"""

from ._base import NOT_ANSWERED, CheckFailed, check_score_function
from .chapter01 import check_adversarial_digit, check_fooling_image
from .chapter02 import check_error_overlap, check_twin_step
from .chapter03 import check_symmetric_kl, check_threshold
from .chapter04 import check_success_curve, check_twins_fooled
from .chapter05 import check_auroc, check_fpr_at_tpr
from .chapter06 import check_perturbation, check_training_order
from .chapter07 import (
    check_entropy_of_mean,
    check_mutual_information,
    check_subset_auroc,
)
from .chapter08 import check_bootstrap_auroc, check_rotation
from .chapter09 import check_energy, check_mahalanobis
from .chapter10 import check_calibration_draws, check_cosine_similarity
from .chapter11 import check_flag_shares, check_twin_score

__all__ = [
    "NOT_ANSWERED",
    "CheckFailed",
    "check_adversarial_digit",
    "check_auroc",
    "check_bootstrap_auroc",
    "check_calibration_draws",
    "check_cosine_similarity",
    "check_energy",
    "check_entropy_of_mean",
    "check_error_overlap",
    "check_flag_shares",
    "check_fooling_image",
    "check_fpr_at_tpr",
    "check_mahalanobis",
    "check_mutual_information",
    "check_perturbation",
    "check_rotation",
    "check_score_function",
    "check_subset_auroc",
    "check_success_curve",
    "check_symmetric_kl",
    "check_threshold",
    "check_training_order",
    "check_twin_score",
    "check_twin_step",
    "check_twins_fooled",
]
