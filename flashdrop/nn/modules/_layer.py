"""The bases of flashdrop's layers: ``mlx.nn.Module``s called like torch modules.

:class:`TorchModule` is every layer's: torch's ``forward``, and a training flag set as torch
sets it, which :func:`flashdrop.compile` follows. :class:`Layer` is the parameterless dropout
layers': their arguments stay plain attributes, never MLX parameters.
"""

from typing import Any

import mlx.core as mx
import mlx.nn

from flashdrop import _checks, _random

__all__ = ["Layer", "TorchModule"]


class TorchModule(mlx.nn.Module):
    """An ``mlx.nn.Module`` with torch's ``forward``, and a training flag that torch code may
    assign (``layer.training = False``) and that :func:`flashdrop.compile` follows.

    Its parameters, if any, are MLX's: ``parameters()``, ``load_weights`` and the optimizers see
    them (the attention, transformer and RNN layers name them as torch's ``state_dict()``).
    """

    def train(self, mode: bool = True) -> "TorchModule":
        """Set training mode (``mode=True``) or evaluation mode, as torch: ``mode`` must be a
        bool. Returns the module."""
        _checks.check_train_mode(mode)
        return super().train(mode)

    # mlx.nn.Module's `training` is read-only; torch code also assigns it.
    @property
    def training(self) -> bool:
        return self._training

    @training.setter
    def training(self, mode: bool) -> None:
        self._training = mode

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        _random.note_training_flag(self)  # a flashdrop.compile trace depends on self.training
        return self.forward(*args, **kwargs)


class Layer(TorchModule):
    """A parameterless layer called like a torch module: ``forward``, ``extra_repr``, ``train``.

    Its arguments are kept as given, for reading and the repr, as torch keeps them, but never
    as MLX parameters, whatever their types: ``mlx.nn.Module`` makes every ``mx.array``
    attribute (and every list, tuple or dict) an entry of the module, an array a trainable
    parameter, which an optimizer would then move. Here every attribute is a plain one, and
    ``layer[key] = value`` is refused.
    """

    def __setattr__(self, key: str, value: Any) -> None:
        object.__setattr__(self, key, value)  # an attribute, never an entry of the module

    def __setitem__(self, key: str, value: Any) -> None:
        _checks.raise_layer_item(type(self).__name__, key)

    def forward(self, input: mx.array) -> mx.array:
        raise NotImplementedError

    def extra_repr(self) -> str:
        raise NotImplementedError

    def _extra_repr(self) -> str:  # what mlx.nn.Module's repr calls
        return self.extra_repr()
