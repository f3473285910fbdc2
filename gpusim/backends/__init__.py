"""Ways to run the model, behind one face (base.py): the numpy reference (reference.py),
the fused CUDA kernel (cuda.py), and the same kernel headers compiled for the host
(host.py). devices.py chooses one for a requested device; the kernel's parameter layout
(header.py, packing.py) and launch arguments (kernel_io.py) are defined once for both of
the kernel's builds."""
