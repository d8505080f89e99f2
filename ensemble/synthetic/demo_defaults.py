"""The demo dataset's defaults, in a module light enough for `ens --help` (no numpy, no pandas)."""

DEFAULT_TRAIN = 2000
DEFAULT_TEST = 500
DEFAULT_LABEL_ERRORS = 0.01  # share of train images labelled on a background face
DEFAULT_CROWD = 0.01  # share of images with a background face, labelled on the subject
N_POINTS = 971  # the competition layout (ensemble.competition.layout.FACE_971)
