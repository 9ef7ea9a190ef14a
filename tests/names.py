"""torch's six dropout functions and their modules, named once for every test."""

from flashdrop.compat import porting_layers

FUNCTIONS = (
    "dropout",
    "alpha_dropout",
    "dropout1d",
    "dropout2d",
    "dropout3d",
    "feature_alpha_dropout",
)
# dropout1d -> Dropout1d, feature_alpha_dropout -> FeatureAlphaDropout
MODULE_OF = {name: "".join(part.capitalize() for part in name.split("_")) for name in FUNCTIONS}
FUNCTION_OF = {module: name for name, module in MODULE_OF.items()}

# torch.nn's layers that drop inside themselves (attention, transformers, RNNs): flashdrop.nn
# has them too, tested in tests/parity/test_nn_*_parity.py, not with the dropout modules.
LAYERS = porting_layers.LAYERS
