"""The dropout family: one row per layer flashdrop offers, and the facts the rest of it reads.

compat's porting (which torch, torchvision and timm classes have a twin, and which settings the
twin takes from them), flashdrop.testing (which ops drop to alpha dropout's value, which drop
channels), the parity report (which ops it runs) and the tests read these rows; a new layer is
one more row here (and its function and module in :mod:`flashdrop.nn`).

This module holds data only: it imports nothing of flashdrop's, so anything may read it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MEMBERS", "Member", "named"]


@dataclass(frozen=True)
class Member:
    """One layer of the dropout family: its module and function, and where it comes from.

    Attributes:
        module: the class in ``flashdrop.nn``, named as the original names it (``"Dropout2d"``).
        function: the function in ``flashdrop.nn.functional`` (``"dropout2d"``).
        origin: where the layer is defined: ``"torch.nn"``, ``"torchvision"``, ``"timm"``, or
            ``"flashdrop"`` when no library has a canonical class (AWD-LSTM's LockedDropout).
        original: where users import the original class from (``"torch.nn.Dropout2d"``);
            ``None`` when there is none to port from.
        package: the package the original is defined in, or below; ``""``: ``original``'s own
            (timm defines ``timm.layers.DropPath`` in ``timm.layers.drop``, and in
            ``timm.models.layers.drop`` before 0.9).
        settings: the original's attributes that are also the twin's first constructor
            arguments, in order (what porting copies).
        layout: ``"any"``: drops elements or samples, whatever the layout; ``"channel"``: drops
            whole channels, found at a keyword-only ``channel_dim``; ``"first"``: drops blocks of
            channels-first inputs only.
        alpha: drops to alpha dropout's value (SELU's saturation), not to zero.
        min_rank, max_rank: the input ranks the op is made for, batched or not, in torch's
            layout (``max_rank`` ``None``: no upper limit). torch warns on some others
            (a 3-D ``dropout2d`` input is read as ``(N, C, L)``).
    """

    module: str
    function: str
    origin: str
    original: str | None
    settings: tuple[str, ...]
    layout: str = "any"
    alpha: bool = False
    min_rank: int = 0
    max_rank: int | None = None
    package: str = ""

    @property
    def channel(self) -> bool:
        """Whether the op drops whole channels (and takes ``channel_dim``)."""
        return self.layout == "channel"

    @property
    def in_torch_nn(self) -> bool:
        return self.origin == "torch.nn"


_TORCH_SETTINGS = ("p", "inplace")

# In the order port_dropout's message lists the originals: torch.nn's six, torchvision's, timm's.
MEMBERS = (
    Member("Dropout", "dropout", "torch.nn", "torch.nn.Dropout", _TORCH_SETTINGS),
    Member(
        "Dropout1d",
        "dropout1d",
        "torch.nn",
        "torch.nn.Dropout1d",
        _TORCH_SETTINGS,
        "channel",
        min_rank=2,
        max_rank=3,
    ),
    Member(
        "Dropout2d",
        "dropout2d",
        "torch.nn",
        "torch.nn.Dropout2d",
        _TORCH_SETTINGS,
        "channel",
        min_rank=3,
        max_rank=4,
    ),
    Member(
        "Dropout3d",
        "dropout3d",
        "torch.nn",
        "torch.nn.Dropout3d",
        _TORCH_SETTINGS,
        "channel",
        min_rank=4,
        max_rank=5,
    ),
    Member(
        "AlphaDropout",
        "alpha_dropout",
        "torch.nn",
        "torch.nn.AlphaDropout",
        _TORCH_SETTINGS,
        alpha=True,
    ),
    Member(
        "FeatureAlphaDropout",
        "feature_alpha_dropout",
        "torch.nn",
        "torch.nn.FeatureAlphaDropout",
        _TORCH_SETTINGS,
        "channel",
        alpha=True,
        min_rank=2,
    ),
    Member(
        "StochasticDepth",
        "stochastic_depth",
        "torchvision",
        "torchvision.ops.StochasticDepth",
        ("p", "mode"),
        min_rank=1,
    ),
    Member(
        "DropBlock2d",
        "drop_block2d",
        "torchvision",
        "torchvision.ops.DropBlock2d",
        ("p", "block_size", "inplace", "eps"),
        "first",
        min_rank=4,
        max_rank=4,
    ),
    Member(
        "DropBlock3d",
        "drop_block3d",
        "torchvision",
        "torchvision.ops.DropBlock3d",
        ("p", "block_size", "inplace", "eps"),
        "first",
        min_rank=5,
        max_rank=5,
    ),
    Member(
        "DropPath",
        "drop_path",
        "timm",
        "timm.layers.DropPath",
        ("drop_prob", "scale_by_keep"),
        min_rank=1,
        package="timm",
    ),
    # AWD-LSTM's; PyTorch-NLP and flair define their own, so there is no original to port from.
    Member(
        "LockedDropout",
        "locked_dropout",
        "flashdrop",
        None,
        ("p", "batch_first"),
        min_rank=2,
        max_rank=3,
    ),
)


def named(name: str) -> Member | None:
    """The member whose module or function is called ``name``; ``None`` if none is."""
    return next((m for m in MEMBERS if name in (m.module, m.function)), None)
