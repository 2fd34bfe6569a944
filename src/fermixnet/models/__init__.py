"""FERMixNet models: trunks (ResNet-18/50, IR-50), the mid-level branch, registry and weights.

```python
from fermixnet.models import create_model
model = create_model("resnet18", num_classes=7, mid_branch=True)
out = model(x)  # FERMixNetOutput: out.high, out.mid, out.logits (= high + mid)
```
"""

# Importing the trunk modules registers their names in the registry.
from fermixnet.models import irse, resnet  # noqa: F401
from fermixnet.models.fermixnet import ExportWrapper, FERMixNet, FERMixNetOutput, MidBranch
from fermixnet.models.registry import create_model, list_models, register_model
from fermixnet.models.trunk import Trunk

__all__ = [
    "ExportWrapper",
    "FERMixNet",
    "FERMixNetOutput",
    "MidBranch",
    "Trunk",
    "create_model",
    "list_models",
    "register_model",
]
