"""Datasets, training and evaluation for pixelrnn-tf."""
