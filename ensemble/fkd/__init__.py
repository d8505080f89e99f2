"""Kaggle Facial Keypoints Detection: 15-point layout, import, export and synthetic files."""
