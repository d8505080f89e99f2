"""The names `ens blend` offers: weighting schemes, combiners, fit methods, score columns.

Declared once, here, without imports, so that the command's option lists (which load at
`ens --help`) and the implementations that check them read the same tuples.
"""

SCHEMES = ("equal", "inverse", "softmax", "rank", "manual")  # weights from scores.csv
SCORE_COLUMNS = ("score", "public", "val")  # the default order for --by
COMBINERS = ("mean", "median", "trimmed")  # how weighted-in submissions are combined
FIT_METHODS = ("lsq", "greedy")  # weights fitted on validation predictions
LEARNED_METHODS = ("shrink", "stack")  # per-landmark models, their strength chosen across folds
FUSION_METHOD = "uncertainty"  # lsq weights, then fused by the runs' sigma
CV_FOLDS = 5  # folds over validation images for the cross-validated scores of fitted blends
