"""Benchmark flashdrop's dropout against mlx.nn.Dropout and torch's CPU dropout, on one machine;
and flashdrop's other draws (rand, randn, normal, randint, randperm, bernoulli) against torch's.

Run from the repository root (flashdrop, mlx, numpy and torch installed)::

    python scripts/bench.py                    # the full run: a few minutes
    python scripts/bench.py --quick            # fewer rounds, no 16M workloads: well under a minute
    python scripts/bench.py --json out.json    # also write every figure to out.json
    python scripts/bench.py --only sdpa 1M     # only the workloads named with "sdpa" or "1M"
    python scripts/bench.py --markdown docs/performance.md   # the docs' table, from this run
    python scripts/bench.py --from-json out.json   # no new run: out.json's report, judged anew
    python scripts/bench.py --from-json out.json --markdown docs/performance.md  # and its table

The code is the package ``scripts/bench/`` (its ``__init__`` maps the modules); this file is its
entry point. What is compared on each workload (``bench.workloads.WORKLOADS``):

- ``flashdrop-mlx``: ``flashdrop.nn.functional`` in "mlx" random mode, called eagerly;
- ``flashdrop-mlx-compiled``: the same call inside ``flashdrop.compile`` (a fresh mask per call);
- ``mlx.nn``: MLX's own layer as a module in training mode: ``mlx.nn.Dropout``, and for channel
  dropout ``mlx.nn.Dropout2d`` on a channels-last input of the same size, the layout that layer
  expects (MLX has no alpha dropout);
- ``torch``: ``torch.nn.functional``'s function on a CPU tensor, with torch's default threads
  (and ``OMP_WAIT_POLICY=PASSIVE`` unless set otherwise: see ``bench/__init__.py``);
- ``flashdrop-torch-mode``: flashdrop in "torch" mode, which emulates torch's CPU mt19937 stream
  on the host with numpy (it cannot be compiled);
- on the draw workloads (rand, randn, normal, randint, randperm, bernoulli), ``through-torch``:
  the same draw through torch's own kernel as an exact torch mode could make it where torch is
  importable: a ``torch.Generator``'s state set, the draw, the state read back, the result
  copied into an ``mx.array``. Nothing else of such a path is counted: it is the floor of any
  exact draw through torch, timed beside torch's own call and flashdrop's torch mode;
- on the attention workloads (``scaled_dot_product_attention`` with q = k = v, all timed the
  same way), ``mlx.nn`` is MLX's own way: with ``dropout_p=0.1``, attention written by hand
  (``q @ k^T * scale``, ``mx.softmax``, ``mlx.nn.Dropout``, ``@ v``); with ``dropout_p=0``,
  ``mx.fast.scaled_dot_product_attention``. Their GB/s count q once and the output once;
- on the channel workloads, ``flashdrop-mlx-element``: flashdrop's element ``F.dropout`` on the
  very same input, the reference of the channel-dropout target; and ``mlx-times-2``, a bare
  ``mx.eval(x * 2)`` on it: one elementwise op writing the output, the floor of channel dropout.
- on the layer workloads (``bench.layers``), flashdrop.nn's ``MultiheadAttention``,
  ``TransformerEncoderLayer``, ``LSTM`` and ``GRU`` in training and in eval mode (``flashdrop-mlx``)
  against the same computation written with mlx.nn parts (``mlx.nn``); no torch, no bandwidth.

Method:

- Inputs are created and evaluated (``mx.eval``) before any timing. An MLX call is timed as
  ``mx.eval(f(x))``: MLX is lazy, so the evaluation is inside the timed region. torch is eager.
- The implementations of a workload are timed round-robin, one call of each per round, the
  starting one rotating from round to round (A B C, B C A, ...), after warm-up rounds that are
  discarded (they also trace the compiled functions). Each time is the median over rounds.
- A ratio "A vs B" is the median over rounds of ``time(A) / time(B)`` within one round: the two
  sides of every pair were timed moments apart, so the drift of a shared machine cancels. The
  ratios to ``mlx.nn`` and to ``torch`` come from the same rounds as the times.
- Effective bandwidth is (bytes read + bytes written) / median time, counting the input once and
  the output once (the mask is internal). It is set against memory copies of 16M float32 measured
  in the same run: numpy's ``np.copyto`` and torch's ``Tensor.copy_`` into preallocated arrays,
  and MLX's ``mx.eval(x + 0)`` (an MLX elementwise op that, like dropout, allocates its output).
  "% copy" is relative to the fastest of the three, the nearest measured figure to the physical
  limit dropout can approach. Workloads that fit in the CPU caches can beat a copy that does not.
- MLX's allocator keeps freed buffers for reuse only up to its cache limit (the header prints
  it; ``mx.set_cache_limit`` sets it). An MLX output larger than that is paged in afresh on every
  call, which weighs on the 16M and channel workloads; the figures are taken with MLX's default,
  and the channel workload once more with the limit raised to 1 GiB for that workload alone
  (flashdrop never changes the limit: it is the user's global setting). At the default limit a
  bare ``mx.eval(x * 2)`` on the channel input already takes about a third of element dropout's
  time, which bounds the channel ratio from below.
- "many shapes": dropout on 20,000 distinct small shapes (2,000 with --quick), each used once,
  as variable sequence lengths give: one call of each implementation per shape, in an order
  shuffled anew for every shape, the inputs made outside the timed region. Memory: the
  resident set size (RSS) of a fresh process before and after calling one implementation on
  all the shapes, flashdrop's growth set against ``mlx.nn.Dropout``'s (each in its own
  subprocess, so neither inherits the other's allocations).
- Nothing here asserts speed; the "targets" section prints each goal with its measured figure
  and "met", or "not met" and why: a known cause with the figures of the run that show it, or
  else how the shortfall compares with the run's spread between rounds.

``--markdown FILE`` writes the results as Markdown tables, with the machine, the versions and the
date, between the lines ``<!-- bench.py --markdown: begin -->`` and ``<!-- bench.py --markdown:
end -->`` of FILE (the rest of FILE is left as it is; a FILE without those lines is refused, a
missing FILE is created): the documentation's table is always one run's output, never typed in.
"""

import sys

from bench.cli import main

if __name__ == "__main__":
    sys.exit(main(description=__doc__.splitlines()[0]))
