"""compat.port_dropout and compat.dropout_layers for torch's attention, Transformer and RNN
layers: one call gives the flashdrop twin, its settings and weights copied, which then makes
torch's draws and gives torch's outputs (within float32 rounding, see _support.layers)."""

import warnings

import pytest
import torch

from flashdrop import compat, nn
from tests._support.layers import assert_same

D, HEADS, FF = 8, 2, 12


def torch_layers():
    """One torch module of each ported class, with its inputs."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's nested-tensor and oneDNN warnings
        encoder_layer = torch.nn.TransformerEncoderLayer(D, HEADS, FF, 0.2, "gelu", norm_first=True)
        decoder_layer = torch.nn.TransformerDecoderLayer(D, HEADS, FF, 0.2, batch_first=True)
        src, tgt = torch.randn(5, 3, D), torch.randn(3, 4, D)
        return {
            "MultiheadAttention": (
                torch.nn.MultiheadAttention(D, HEADS, 0.3, kdim=4, vdim=6, add_bias_kv=True),
                (torch.randn(5, 3, D), torch.randn(6, 3, 4), torch.randn(6, 3, 6)),
            ),
            "TransformerEncoderLayer": (encoder_layer, (src,)),
            "TransformerDecoderLayer": (decoder_layer, (tgt, torch.randn(3, 5, D))),
            "TransformerEncoder": (
                torch.nn.TransformerEncoder(encoder_layer, 2, torch.nn.LayerNorm(D)),
                (src,),
            ),
            "TransformerDecoder": (
                torch.nn.TransformerDecoder(decoder_layer, 3),
                (tgt, torch.randn(3, 5, D)),
            ),
            "Transformer": (
                torch.nn.Transformer(D, HEADS, 2, 1, FF, 0.1, norm_first=True),
                (src, torch.randn(4, 3, D)),
            ),
            "RNN": (torch.nn.RNN(D, 6, 2, "relu", dropout=0.3), (src,)),
            "LSTM": (
                torch.nn.LSTM(D, 6, 3, dropout=0.3, bidirectional=True, proj_size=4),
                (src,),
            ),
            "GRU": (torch.nn.GRU(D, 6, 2, batch_first=True, dropout=0.5), (tgt,)),
        }


@pytest.mark.parametrize("name", list(torch_layers()))
@pytest.mark.parametrize("training", [True, False])
def test_port_dropout_gives_the_twin_with_torchs_weights(name, training):
    module, inputs = torch_layers()[name]
    module.train(training)
    port = compat.port_dropout(module)
    assert type(port) is getattr(nn, name)
    assert port.training is training

    def quiet(fn):
        def call(*args):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch's oneDNN warning (proj_size)
                return fn(*args)

        return call

    assert_same(quiet(module), port, *inputs)


def test_dropout_layers_lists_the_layers_dropping_inside_themselves():
    model = torch.nn.ModuleDict(
        {
            "encoder": torch.nn.TransformerEncoderLayer(D, HEADS, FF),
            "rnn": torch.nn.LSTM(D, 4, 2, dropout=0.1),
            "attn": torch.nn.MultiheadAttention(D, HEADS),
        }
    )
    assert [name for name, _ in compat.dropout_layers(model)] == [
        "encoder.self_attn",
        "encoder.dropout",
        "encoder.dropout1",
        "encoder.dropout2",
        "rnn",
        "attn",
    ]


def test_an_activation_without_a_twin_is_refused():
    layer = torch.nn.TransformerEncoderLayer(D, HEADS, FF, activation=torch.tanh)
    with pytest.raises(TypeError, match="cannot port the activation"):
        compat.port_dropout(layer)
