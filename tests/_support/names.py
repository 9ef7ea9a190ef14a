"""torch.nn's six dropout functions and their modules, read from flashdrop's table of the dropout
family, and torch.nn's layers that drop inside themselves, read from compat's: named once for
every test."""

from flashdrop._family import MEMBERS
from flashdrop.compat import porting_layers

FUNCTIONS = tuple(m.function for m in MEMBERS if m.in_torch_nn)
# dropout1d -> Dropout1d, feature_alpha_dropout -> FeatureAlphaDropout
MODULE_OF = {m.function: m.module for m in MEMBERS if m.in_torch_nn}
FUNCTION_OF = {module: name for name, module in MODULE_OF.items()}
# torch.nn's modules that drop elements, and those that drop whole channels (take channel_dim).
ELEMENT_MODULES = tuple(m.module for m in MEMBERS if m.in_torch_nn and not m.channel)
CHANNEL_MODULES = tuple(m.module for m in MEMBERS if m.in_torch_nn and m.channel)

# torch.nn's layers that drop inside themselves (attention, transformers, RNNs): flashdrop.nn
# has them too, tested in tests/parity/test_nn_*_parity.py, not with the dropout modules.
LAYERS = porting_layers.LAYERS
