"""The synthetic-face generator: FACS faces (`faces`), their renderer (`render`, drawing with the
primitives of `canvas`), occluder shapes (`occluder_shapes`) and the writers of the generated and
occluded data sets (`generate`, `occlude`, `files`). The data it writes is read back by the
`manifest` adapter of `fermixnet.data`; see docs/synthetic.md."""

from fermixnet.synth.faces import SynthConfig
from fermixnet.synth.generate import generate_synthetic, render_sample
from fermixnet.synth.occlude import occlude_dataset

# `occlude` (one image) stays in `fermixnet.synth.occlude`: re-exported here, the function would
# hide the module of the same name.
__all__ = ["SynthConfig", "generate_synthetic", "occlude_dataset", "render_sample"]
