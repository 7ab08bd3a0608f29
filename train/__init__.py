import os

# TensorFlow turns its oneDNN CPU kernels on by default only on CPUs with AVX-512; on AVX2 machines
# (most laptops) they make the CNN's training steps cheaper too (bench/RESULTS.md). Set before
# TensorFlow is imported.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
