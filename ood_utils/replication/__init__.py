"""The original's experiments, replicated: its protocol as settings of the package, its
published numbers, ladders from its protocol to the book's, and the original-scale
results.

The book reproduces N. Patry's post "Self KL-divergence for detecting out of
distribution data" (2020). The modules, in the order one reads them:

- :mod:`~ood_utils.replication.protocols`: the two protocols, one record each
  (:data:`~ood_utils.replication.protocols.RECORDS`: rule, ranking, reference, attacks,
  training recipe), and an experiment's training configuration under either.
- :mod:`~ood_utils.replication.claims`: the original's published numbers, one flat row
  per claim, looked up by their fields.
- :mod:`~ood_utils.replication.ladders`: measure one protocol, then change one factor
  per row until the other is reached.
- :mod:`~ood_utils.replication.measure`: a detector's numbers on a pair of test sets,
  and Exp 1's attacks, as the original printed them.
- :mod:`~ood_utils.replication.spec`: what ``tools/reproduce.py`` trains and measures
  at the original's scale, and the hash of that spec.
- :mod:`~ood_utils.replication.results`: the committed original-scale files, validated
  and read back.
- :mod:`~ood_utils.replication.verdicts`: each claim's verdict, and the Replication
  page's tables.

Their public names are all here too (``replication.ladder``, ``replication.CLAIMS``),
as the chapters use them.
"""

from .claims import CLAIMS, ROWS, Claim, claim, claim_key, find, published
from .ladders import (
    NETWORK_STEP,
    Step,
    e1_joint_walk,
    e2_ladder,
    ladder,
    ladder_causes,
    main_cause,
    one_at_a_time,
    step_effect,
)
from .measure import (
    JOINT_METRICS,
    attack_numbers,
    attack_reference,
    detection_numbers,
    joint_grid_numbers,
    joint_rates,
)
from .protocols import (
    ATTACK_REFERENCES,
    EXPERIMENTS,
    PROTOCOLS,
    RECIPE_FIELDS,
    RECORDS,
    RULE_FACTORS,
    TRAINING_FACTORS,
    AttackSettings,
    Protocol,
    attack_conditions,
    attack_factors,
    attack_settings,
    experiment_config,
    flag_rule,
    protocol,
    protocol_factors,
    scale_of,
    train_config,
)
from .results import (
    BASELINES_FIELDS,
    BASELINES_SUMMARY,
    PROVENANCE_FIELDS,
    RESULT_FIELDS,
    SCALE_GROUPS,
    baselines_cases,
    baselines_key,
    baselines_metrics,
    joint_grid_table,
    load_result,
    load_results,
    member_accuracies,
    member_accuracy_key,
    merge_parts,
    missing_parts,
    original_scale_note,
    original_scale_table,
    original_scale_value,
    original_scale_values,
    provenance_line,
    result_path,
    scale_ladder,
)
from .spec import (
    DATASETS,
    E5_CHARS,
    SCALE_EXPERIMENTS,
    SCALE_LADDERS,
    SCALE_PARTS,
    SCALE_PROTOCOLS,
    SPEC_VERSION,
    e1_pair_name,
    e5_config,
    ensemble_group,
    experiment_parts,
    experiment_spec,
    experiment_trainings,
    joint_grid_group,
    scale_ladder_group,
    spec_hash,
)
from .verdicts import (
    claim_record,
    pair_and_grid,
    reading_table,
    replication_table,
    scale_verdict,
    verdict,
)

__all__ = [
    "ATTACK_REFERENCES",
    "AttackSettings",
    "BASELINES_FIELDS",
    "BASELINES_SUMMARY",
    "CLAIMS",
    "Claim",
    "DATASETS",
    "E5_CHARS",
    "EXPERIMENTS",
    "JOINT_METRICS",
    "NETWORK_STEP",
    "PROTOCOLS",
    "PROVENANCE_FIELDS",
    "Protocol",
    "RECIPE_FIELDS",
    "RECORDS",
    "RESULT_FIELDS",
    "ROWS",
    "RULE_FACTORS",
    "SCALE_EXPERIMENTS",
    "SCALE_GROUPS",
    "SCALE_LADDERS",
    "SCALE_PARTS",
    "SCALE_PROTOCOLS",
    "SPEC_VERSION",
    "Step",
    "TRAINING_FACTORS",
    "attack_conditions",
    "attack_factors",
    "attack_numbers",
    "attack_reference",
    "attack_settings",
    "baselines_cases",
    "baselines_key",
    "baselines_metrics",
    "member_accuracies",
    "member_accuracy_key",
    "claim",
    "claim_key",
    "claim_record",
    "detection_numbers",
    "e1_joint_walk",
    "e1_pair_name",
    "e2_ladder",
    "e5_config",
    "ensemble_group",
    "experiment_config",
    "experiment_parts",
    "experiment_spec",
    "experiment_trainings",
    "find",
    "flag_rule",
    "joint_grid_group",
    "joint_grid_numbers",
    "joint_grid_table",
    "joint_rates",
    "ladder",
    "ladder_causes",
    "load_result",
    "load_results",
    "main_cause",
    "merge_parts",
    "missing_parts",
    "one_at_a_time",
    "original_scale_note",
    "original_scale_table",
    "original_scale_value",
    "original_scale_values",
    "pair_and_grid",
    "protocol",
    "protocol_factors",
    "provenance_line",
    "published",
    "reading_table",
    "replication_table",
    "result_path",
    "scale_ladder",
    "scale_ladder_group",
    "scale_of",
    "scale_verdict",
    "spec_hash",
    "step_effect",
    "train_config",
    "verdict",
]
