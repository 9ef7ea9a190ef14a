"""The parity report: every torch dropout function and module next to its flashdrop twin.

Run it with ``python -m flashdrop.parity`` (``--quick`` for a small grid, ``--plot FILE.png`` to
also draw the keep-rate distributions, ``--seed N``). It needs torch (``pip install
'.[torch]'`` in flashdrop's clone), which it gets from :mod:`flashdrop.compat`, the only code
that imports torch.

For each op (the six functions of ``torch.nn.functional`` and the six modules of ``torch.nn``),
each shape the op accepts (batched, unbatched, legacy), each dtype and each p, it runs torch and
flashdrop on the same input in both random modes and prints one row per run:

- ``torch`` mode: both sides seeded alike (``torch.manual_seed(s)``, ``flashdrop.manual_seed(s)``),
  several consecutive calls; the row is *bit-exact* when every output bit is torch's (NaN outputs
  compared as NaN: torch does not define which NaN ``nan * 0`` gives).
- ``mlx`` mode: flashdrop draws from MLX's generator, so masks differ; the row compares the
  fraction of kept elements (channels, for feature dropout) of the two sides over enough draws
  with a two-proportion z-test, and fails when its p-value is below :data:`P_VALUE_THRESHOLD`.

In both modes every output element must be either the value torch gives it when kept or the value
torch gives it when dropped, as torch rounds them (see
:class:`flashdrop.parity.reference.Reference`), with whole channels agreeing for feature dropout.
The exit status is 0 when every row passes, 1 otherwise, 2 for a missing dependency.

The package is organised as:

- :mod:`flashdrop.parity.grid`: the ops, shapes, dtypes, p and modes that are run;
- :mod:`flashdrop.parity.reference`: the torch reference, the values torch gives each element
  kept and dropped, against which every output is read;
- :mod:`flashdrop.parity.stats`: the two-proportion test of the mlx-mode rows;
- :mod:`flashdrop.parity.report`: running and judging the rows, the table, :func:`main`;
- :mod:`flashdrop.parity.plot`: the keep-rate histograms of ``--plot``.
"""

from flashdrop.parity.report import main
from flashdrop.parity.stats import P_VALUE_THRESHOLD, two_proportion_p_value

__all__ = ["P_VALUE_THRESHOLD", "main", "two_proportion_p_value"]
