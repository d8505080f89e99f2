"""Synthetic data: the procedural face and its renderer, the demo and Kaggle FKD generators.

No imports here: `ens --help` loads `ensemble.synthetic.demo_defaults` and must stay light.
"""
