"""DVC stages: one module per stage, each run as ``python -m stages.<name>``.

Importing the package pins the CPU's numeric kernels first (:mod:`stages._kernels`), before any stage loads
numpy or torch, so a stage's outputs are the same bits on every x86 machine with AVX2.
"""

from stages._kernels import pin

pin()
