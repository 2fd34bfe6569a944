"""Training benchmarks: co-training overhead and FLOP efficiency of a training step.

- ``train_overhead``: time of one FERMix co-training step (sample + apply, one forward over B main
  + B mixed images, Eq. 9, backward, SGD step) over the time of a plain step on 2B images, same
  model and optimizer; the two are timed in turn and the medians compared.
- ``train_flop_efficiency``: FLOPs of the co-training step (torch's FlopCounterMode, forward and
  backward) per second of step time, over the matmul ceiling measured in the same run (a large
  float32 ``torch.mm``). Also reported for the plain step and, unless ``--no-variants``, for a
  contiguous (NCHW) layout and a smaller batch, to show what limits it.

Run: ``python benchmarks/train_bench.py [--size 112] [--batch 64] [--out FILE] [--smoke]``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from common import base_parser, finish, matmul_gflops, median, setup, time_fn, time_interleaved
from steps import build_trainer, random_batch


def count_flops(step, u8: torch.Tensor, labels: torch.Tensor) -> int:
    """FLOPs torch counts in one step (convolutions and matmuls, forward and backward)."""
    counter = FlopCounterMode(display=False)
    with counter:
        step(u8, labels)
    return int(counter.get_total_flops())


def overhead_and_efficiency(
    device: torch.device, size: int, batch: int, warmup: int, repeats: int, peak: float
) -> dict[str, Any]:
    """Co-training vs plain step at one size/batch, channels_last, with FLOP efficiency."""
    trainer = build_trainer(device, channels_last=True)
    u8, labels = random_batch(batch, size, device)
    u8_2x, labels_2x = random_batch(2 * batch, size, device, seed=1)
    times = time_interleaved(
        {"cotrain": lambda: trainer.cotrain(u8, labels),
         "plain": lambda: trainer.plain(u8_2x, labels_2x)},
        warmup=warmup, repeats=repeats, device=device,
    )
    co, plain = median(times["cotrain"]), median(times["plain"])
    flops_co = count_flops(trainer.cotrain, u8, labels)
    flops_plain = count_flops(trainer.plain, u8_2x, labels_2x)
    return {
        "size": size,
        "batch_main": batch,
        "images_per_step": 2 * batch,
        "cotrain_step_s": co,
        "plain_step_s": plain,
        "cotrain_step_s_all": times["cotrain"],
        "plain_step_s_all": times["plain"],
        "train_overhead": co / plain,
        "train_images_per_s": batch / co,  # main images the data loader must supply
        "train_images_per_s_total": 2 * batch / co,  # main + mixed through the model
        "gflop_per_step": flops_co / 1e9,
        "achieved_gflops": flops_co / co / 1e9,
        "train_flop_efficiency": flops_co / co / 1e9 / peak,
        "plain_flop_efficiency": flops_plain / plain / 1e9 / peak,
    }


def variant_efficiency(
    device: torch.device, size: int, batch: int, channels_last: bool, warmup: int, repeats: int,
    peak: float,
) -> dict[str, Any]:
    """FLOP efficiency of the co-training step for one layout and batch size."""
    trainer = build_trainer(device, channels_last=channels_last)
    u8, labels = random_batch(batch, size, device)
    step_s = median(time_fn(lambda: trainer.cotrain(u8, labels), warmup, repeats, device))
    flops = count_flops(trainer.cotrain, u8, labels)
    return {
        "size": size,
        "batch_main": batch,
        "channels_last": channels_last,
        "cotrain_step_s": step_s,
        "train_flop_efficiency": flops / step_s / 1e9 / peak,
    }


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=112, help="image side, px")
    parser.add_argument("--batch", type=int, default=64, help="main images per step (B)")
    parser.add_argument("--repeats", type=int, default=9,
                        help="timed steps of each kind (medians; 5 were noisy: 1.00-1.07)")
    parser.add_argument("--no-variants", action="store_true", help="skip layout/batch variants")
    args = parser.parse_args()
    device = setup(args)
    if args.smoke:
        args.size, args.batch, args.repeats, args.no_variants = 32, 4, 2, True
    warmup = 1 if args.smoke else 2
    ceiling = matmul_gflops(device, n=128 if args.smoke else 2048, repeats=2 if args.smoke else 5)
    peak = ceiling["ceiling"]
    results: dict[str, Any] = {"matmul_gflops": ceiling}
    results.update(overhead_and_efficiency(device, args.size, args.batch, warmup, args.repeats,
                                           peak))
    if not args.no_variants:
        results["variants"] = [
            variant_efficiency(device, args.size, args.batch, False, 1, max(2, args.repeats - 2),
                               peak),
            variant_efficiency(device, args.size, max(1, args.batch // 2), True, 1,
                               max(2, args.repeats - 2), peak),
        ]
    finish("train", args, results, device)


if __name__ == "__main__":
    main()
