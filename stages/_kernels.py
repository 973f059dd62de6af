"""Pin the CPU's numeric kernels before numpy, scipy or torch load, so a stage computes the same bits anywhere.

A float sum's last bits depend on how it is split: by the instruction set a library picks for the CPU (torch's
ATen kernels, MKL's GEMM, OpenBLAS's core type, numpy's SIMD loops each choose AVX-512 where the CPU has it) and
by the number of threads sharing it. Measured on this project: the same ICPA training gave loss curves that differ
in the 6th significant digit between an AVX-512 and an AVX2 machine, and torch at 2 threads against 1 changes a
column sum. So every stage, before anything heavy is imported (``stages/__init__.py``), asks each library for its
AVX2 code path on any x86 CPU that has AVX2 and FMA, and for one thread. Each library documents its switch:
``ATEN_CPU_CAPABILITY`` (torch), ``MKL_CBWR`` (MKL's conditional numerical reproducibility), ``ONEDNN_MAX_CPU_ISA``
(oneDNN), ``OPENBLAS_CORETYPE`` (OpenBLAS, numpy's and scipy's BLAS), ``NPY_DISABLE_CPU_FEATURES`` (numpy 2's
dispatched loops).

A variable the caller already set is left as it is (``OMP_NUM_THREADS=8 dvc repro`` is faster and, knowingly, not
bit-identical to the committed outputs), and ``CROSSMATCH_NATIVE_KERNELS=1`` turns all of this off. CPUs without
AVX2 (and non-x86 ones) get the thread pin only: their kernels cannot run the AVX2 path.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from pathlib import Path

OPT_OUT = "CROSSMATCH_NATIVE_KERNELS"
THREADS = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
AVX2 = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "MKL_CBWR": "AVX2,STRICT",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "OPENBLAS_CORETYPE": "Haswell",
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",
}
CPUINFO = Path("/proc/cpuinfo")


def cpu_flags(cpuinfo: str) -> frozenset[str]:
    """The feature flags of the first processor in a Linux ``/proc/cpuinfo`` text (empty when there are none)."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


def kernel_pins(*, flags: frozenset[str], environ: Mapping[str, str]) -> dict[str, str]:
    """The variables to set: one thread always, the AVX2 paths where the CPU has AVX2 and FMA; never one the
    caller set, and nothing at all under ``CROSSMATCH_NATIVE_KERNELS=1``."""
    if environ.get(OPT_OUT, "").strip() == "1":
        return {}
    wanted = dict(THREADS)
    if {"avx2", "fma"} <= flags:
        wanted.update(AVX2)
    return {name: value for name, value in wanted.items() if name not in environ}


def machine_flags() -> frozenset[str]:
    """This CPU's feature flags (empty off Linux, where there is no ``/proc/cpuinfo`` to read)."""
    try:
        return cpu_flags(CPUINFO.read_text(errors="replace"))
    except OSError:
        return frozenset()


def pin(environ: MutableMapping[str, str] = os.environ) -> dict[str, str]:
    """Apply :func:`kernel_pins` for this machine to ``environ``; returns what was set."""
    pins = kernel_pins(flags=machine_flags(), environ=environ)
    environ.update(pins)
    return pins
