"""μ-BERT (Micron-BERT, CVPR 2023): the model, its pretraining on frame-pair shards, and LOSO evaluation."""
