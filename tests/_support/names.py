"""torch.nn's six dropout functions and their modules, named once for every test: read from
flashdrop's table of the dropout family."""

from flashdrop._family import MEMBERS

FUNCTIONS = tuple(m.function for m in MEMBERS if m.in_torch_nn)
# dropout1d -> Dropout1d, feature_alpha_dropout -> FeatureAlphaDropout
MODULE_OF = {m.function: m.module for m in MEMBERS if m.in_torch_nn}
FUNCTION_OF = {module: name for name, module in MODULE_OF.items()}
# torch.nn's modules that drop elements, and those that drop whole channels (take channel_dim).
ELEMENT_MODULES = tuple(m.module for m in MEMBERS if m.in_torch_nn and not m.channel)
CHANNEL_MODULES = tuple(m.module for m in MEMBERS if m.in_torch_nn and m.channel)
