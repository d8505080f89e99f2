"""The report's sections, one module each; each says what is missing when its inputs are absent.

`uniformity`, `leaderboard` (validation to leaderboard), `points` (per-point MSE), `errors`
(per-image tails, suspect labels) and `calibration` (predicted sigma). Malformed input files raise
`InputError` (the CLI turns it into a clean message); inputs that are absent or too thin for a
section give a `Section` with `missing` set instead.
"""
