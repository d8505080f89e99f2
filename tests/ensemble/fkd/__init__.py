"""Tests of `ensemble.fkd`: Kaggle Facial Keypoints layout, import and export."""
