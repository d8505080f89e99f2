"""Tests of `models`: configs, backbones, augmentation, training, resume, folds."""
