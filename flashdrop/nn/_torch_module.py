"""The base of flashdrop's layers with parameters: an ``mlx.nn.Module`` called like a torch one."""

from typing import Any

import mlx.nn

from flashdrop import _random


class TorchModule(mlx.nn.Module):
    """An ``mlx.nn.Module`` with torch's ``forward``, and a training flag that torch code may
    assign (``layer.training = False``) and that :func:`flashdrop.compile` follows.

    Its parameters are MLX's: ``parameters()``, ``load_weights`` and the optimizers see them
    under torch's ``state_dict()`` names.
    """

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
