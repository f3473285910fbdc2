"""The benchmark suite behind `gpusim bench`: gpusim against its peers on the same model.

- `peers`: the market of MODEL.md §2 written in plain numpy with numpy's default Generator,
  the scenario configs the benchmarks use, and the distribution and equation checks;
- `jax_market`: the same market in JAX (`jax.jit` of a `lax.scan` over months, vectorized
  over paths, `jax.random` draws); optional, JAX is not a dependency of gpusim;
- `gpu`: device bandwidths and the GPU runs (fused kernel in cube and summary mode, the
  numpy reference on CuPy arrays);
- `machine`: what the numbers were measured on;
- `suite`: the runner (`run_suite`), cold and warm times, scaling curves, goals;
- `report`: the console table, the JSON, the markdown table and the plots.

Throughputs are in path-months per second: paths × months simulated, divided by the wall
time in seconds.
"""
