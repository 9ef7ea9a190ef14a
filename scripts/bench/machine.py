"""The machine and the versions a report names."""

import os
import platform

import mlx.core as mx
import numpy as np
import torch

import flashdrop


def mlx_cache_limit() -> int:
    """MLX's buffer-cache limit in bytes: freed buffers above it go back to the OS.

    MLX has no getter; ``set_cache_limit`` returns the previous limit, which is set back at once.
    """
    limit = mx.set_cache_limit(mx.get_memory_limit())
    mx.set_cache_limit(limit)
    return limit


def machine_info() -> dict:
    """The machine and versions; call it first, before MLX has cached any buffer."""
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "mlx": mx.__version__,
        "mlx_device": str(mx.default_device()),
        "mlx_cache_limit_bytes": mlx_cache_limit(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "numpy": np.__version__,
        "flashdrop": flashdrop.__version__,
    }


def describe(machine: dict) -> tuple[str, str]:
    """The machine and the versions, in two phrases that the terminal and Markdown reports share."""
    m = machine
    where = f"{m['platform']} ({m['machine']}, {m['cpu_count']} CPUs), Python {m['python']}"
    versions = (
        f"mlx {m['mlx']} on {m['mlx_device']} (buffer cache limit "
        f"{m['mlx_cache_limit_bytes'] / 2**20:.0f} MiB), torch {m['torch']} "
        f"({m['torch_threads']} threads, OMP_WAIT_POLICY={m['omp_wait_policy']}), "
        f"numpy {m['numpy']}"
    )
    return where, versions
