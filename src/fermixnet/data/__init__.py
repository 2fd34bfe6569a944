"""Data sets for facial expression recognition: adapters, subsets, cache.

Every adapter maps its own label codes onto `fermixnet.labels.CANONICAL` and returns a
`FERDataset` of `Sample(path, label, meta)`; `build_cache` turns one into uint8 tensors at the
model's input size.
"""

from fermixnet.data.base import DatasetReport, FERDataset, Sample
from fermixnet.data.registry import (
    create_dataset,
    list_datasets,
    parse_data_spec,
    register_dataset,
)

__all__ = [
    "DatasetReport",
    "FERDataset",
    "Sample",
    "create_dataset",
    "list_datasets",
    "parse_data_spec",
    "register_dataset",
]
