"""Stages pin the CPU's numeric kernels (stages._kernels): same bits whatever the caller's thread count or CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from stages._kernels import AVX2, OPT_OUT, THREADS, cpu_flags, kernel_pins, machine_flags
from tests.conftest import ROOT

PINNED = sorted({*THREADS, *AVX2})

CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
flags\t\t: fpu sse2 avx fma avx2 bmi2
processor\t: 1
flags\t\t: fpu sse2
"""


def test_flags_are_read_from_the_first_processor() -> None:
    assert cpu_flags(CPUINFO) == {"fpu", "sse2", "avx", "fma", "avx2", "bmi2"}
    assert cpu_flags("model name: x\n") == frozenset()


def test_avx2_cpus_get_every_pin_others_the_thread_pin_only() -> None:
    assert kernel_pins(flags=cpu_flags(CPUINFO), environ={}) == {**THREADS, **AVX2}
    assert kernel_pins(flags=frozenset({"avx2"}), environ={}) == THREADS  # AVX2 without FMA: not Haswell's path
    assert kernel_pins(flags=frozenset(), environ={}) == THREADS


def test_the_caller_wins_and_can_opt_out() -> None:
    pins = kernel_pins(flags=cpu_flags(CPUINFO), environ={"OMP_NUM_THREADS": "8", "MKL_CBWR": "AUTO"})
    assert "OMP_NUM_THREADS" not in pins and "MKL_CBWR" not in pins and pins["ATEN_CPU_CAPABILITY"] == "avx2"
    assert kernel_pins(flags=cpu_flags(CPUINFO), environ={OPT_OUT: "1"}) == {}


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in PINNED and k != OPT_OUT}
    return {**env, "PYTHONPATH": str(ROOT), **extra}


# torch's intra-op threads split a full reduction, so its last bits depend on the thread count
_SUM = ("import hashlib, torch; torch.manual_seed(0); x = torch.randn(400000, 64); "
        "print(torch.get_num_threads(), hashlib.md5(x.sum().numpy().tobytes() + x.mean().numpy().tobytes()).hexdigest())")


def test_a_stage_process_sets_the_pins_before_torch_loads(tmp_path) -> None:
    code = "import json, os, stages, torch; print(json.dumps([torch.get_num_threads(), dict(os.environ)]))"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=_clean_env(), capture_output=True,
                         text=True, check=True)
    threads, environ = json.loads(out.stdout)
    assert threads == 1
    expected = kernel_pins(flags=machine_flags(), environ={})
    assert {k: environ.get(k) for k in expected} == expected


def test_same_bits_with_or_without_the_callers_thread_setting(tmp_path) -> None:
    """What `dvc repro` gives with no thread setting equals the one-thread run the committed outputs came from
    (without the pin, torch takes every core and the sum differs on any machine with two or more)."""
    run = [sys.executable, "-c", "import stages; " + _SUM]
    bare = subprocess.run(run, cwd=tmp_path, env=_clean_env(), capture_output=True, text=True, check=True)
    one = subprocess.run(run, cwd=tmp_path, env=_clean_env(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1"),
                         capture_output=True, text=True, check=True)
    assert bare.stdout == one.stdout
