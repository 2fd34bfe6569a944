"""fermixnet: occlusion-robust facial expression recognition (FERMix, co-training, FERMixNet)."""

__version__ = "0.1.0"
