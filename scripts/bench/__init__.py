"""The benchmark behind ``scripts/bench.py``: flashdrop against mlx.nn and torch on one machine.

One module per concern, in the order a run uses them:

- :mod:`bench.workloads`: what is compared (the implementations of each kind of dropout or draw)
  and on what (the workloads, the many-shapes list);
- :mod:`bench.timing`: how a set of calls is timed (round-robin, per-round ratios);
- :mod:`bench.measure`: the runs themselves (the copy reference, a workload, the many shapes),
  each giving result rows;
- :mod:`bench.layers`: flashdrop.nn's attention, Transformer and RNN layers against mlx.nn
  parts, in training and eval, giving result rows of their own;
- :mod:`bench.memory`: the resident-set growth over the many shapes, each side in a fresh process;
- :mod:`bench.machine`: the machine and versions the report names;
- :mod:`bench.targets`: the goals, each judged on the rows with a plain reason where it is not met;
- :mod:`bench.terminal` and :mod:`bench.markdown`: the report, for a terminal and for the docs;
- :mod:`bench.cli`: the command line.
"""

import os

# torch's OpenMP workers spin-wait between parallel regions by default. On a small shared machine
# (2 vCPUs here) that made torch's dropout jump between ~1 ms and ~16 ms at 64K elements from one
# run to the next; sleeping workers give torch its stable, faster figure. Set here, before any
# module of the package loads torch (and OpenMP); an OMP_WAIT_POLICY already in the environment
# wins, and the report's header prints it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
