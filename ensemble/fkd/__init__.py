"""Kaggle Facial Keypoints Detection: the 15-point layout, import and export.

Its synthetic files (`ens make-demo --format fkd`) are written by `ensemble.synthetic.fkd`.
"""
