"""End-to-end runs: the demo pipeline, Kaggle Facial Keypoints, DDP over two processes."""
