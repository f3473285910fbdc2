"""For the rehearsal of benchmarks/gpu/session.sh without a GPU (GPUSIM_STANDIN=1 puts
this folder first on PYTHONPATH): `import cupy` gives tests/host_cupy.py's stand-in,
which runs the kernels through their host build."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[4] / "tests"))
# host_cupy imports gpusim, and with it dask and xarray, which look for CuPy: while the
# stand-in is being made, they find none (as in tests/test_gpu_path.py's fixture)
sys.modules["cupy"] = sys.modules["cupyx"] = None  # type: ignore[assignment]
import host_cupy  # noqa: E402

sys.modules["cupy"], sys.modules["cupyx"] = host_cupy.make()
