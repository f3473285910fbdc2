"""The stand-in's cupyx (see ../cupy): importing cupy puts both in sys.modules."""

import cupy  # noqa: F401
