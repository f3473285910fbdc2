"""Ways to run the model: the numpy reference (gpusim.engine), the fused CUDA kernel
(cuda.py), and the same kernel headers compiled for the host (host.py, for tests)."""
