"""Write one YAML per ablation of the paper (Tables 1-4, Figs. 5-8), each on top of the RAF-DB
recipe through `_base_`. Run from anywhere: `python configs/ablations/generate.py`; the outputs
are committed, so the script only needs running again when the list changes.

Choices the paper leaves open (stated in each file's header):
- Table 4's two-pattern rows split the probability evenly between the two patterns.
- Fig. 6 sets p_mix = 0 ("do not feed the mixed image"), keeping the mid-level branch.
- Fig. 5's "without co-training" trains on the mixed batch alone when r < p_mix (`mix.cotrain`).
"""

from __future__ import annotations

from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
BASE = "../rafdb_resnet18.yaml"
PATTERNS = {"horizontal": ("upper", "lower"), "vertical": ("left", "right"),
            "corner": ("upper_left", "upper_right")}  # fmt: skip
TABLE3 = [(40, 20, 40), (20, 40, 40), (30, 30, 40), (40, 30, 30), (30, 40, 30), (35, 35, 30),
          (60, 20, 20), (20, 60, 20), (40, 40, 20), (80, 10, 10), (10, 80, 10), (45, 45, 10)]
SWEEP = [round(0.1 * k, 1) for k in range(1, 10)]


def probs(h: float, v: float, c: float) -> dict[str, float]:
    """Region probabilities from per-pattern ones, split evenly inside a pattern (Sec. 3.2.1)."""
    per = {"horizontal": h, "vertical": v, "corner": c}
    return {r: round(per[p] / 2, 6) for p, regions in PATTERNS.items() for r in regions if per[p]}


def vanilla(**mix) -> dict:
    """Vanilla ResNet-18 (no mid-level branch), as Tables 2-4 and Fig. 8 use."""
    return {"model": {"mid_branch": False}, "mix": mix}


def configs() -> dict[str, tuple[str, dict]]:
    """name -> (header comment, overrides of the base recipe)."""
    out: dict[str, tuple[str, dict]] = {
        "table1_baseline": ("Table 1 row 1: no FERMix, no mid-level branch.",
                            vanilla(method="none")),
        "table1_fermix": ("Table 1 row 2: FERMix (co-trained), no mid-level branch.",
                          vanilla(method="fermix")),
        "table1_midbranch": ("Table 1 row 3: mid-level branch, no FERMix.",
                             {"mix": {"method": "none"}}),
        "table1_fermixnet": ("Table 1 row 4: FERMix + mid-level branch (FERMixNet).", {}),
        "table2_baseline": ("Table 2: vanilla ResNet-18 without FERMix.", vanilla(method="none")),
    }
    for pattern in PATTERNS:
        p = {k: 1.0 if k == pattern else 0.0 for k in PATTERNS}
        out[f"table2_{pattern}"] = (f"Table 2: vanilla ResNet-18 with the {pattern} pattern only.",
                                    vanilla(method="fermix", probs=probs(**{k[0]: v for k, v in
                                                                            p.items()})))
    for h, v, c in TABLE3:
        out[f"table3_h{h}_v{v}_c{c}"] = (
            f"Table 3: pattern probabilities horizontal {h} %, vertical {v} %, corner {c} %; "
            "vanilla ResNet-18.", vanilla(method="fermix", probs=probs(h / 100, v / 100, c / 100)))
    combos = ["", "h", "v", "c", "hv", "hc", "vc", "hvc"]
    for combo in combos:
        if not combo:
            out["table4_none"] = ("Table 4 row 1: no FERMix pattern; vanilla ResNet-18.",
                                  vanilla(method="none"))
            continue
        if combo == "hvc":
            hvc = (0.4, 0.4, 0.2)  # Sec. 4.3.3's recommendation
        else:
            hvc = tuple(1.0 / len(combo) if k in combo else 0.0 for k in "hvc")
        out[f"table4_{combo}"] = (
            f"Table 4: patterns {'+'.join(combo.upper())} with probabilities "
            f"H {hvc[0]:.2f} / V {hvc[1]:.2f} / C {hvc[2]:.2f}; vanilla ResNet-18.",
            vanilla(method="fermix", probs=probs(*hvc)))
    for p in SWEEP:
        out[f"fig5_cotrain_pmix{p}"] = (f"Fig. 5: p_mix = {p} with co-training (Eq. 9).",
                                        {"mix": {"p_mix": p, "cotrain": True}})
        out[f"fig5_alternate_pmix{p}"] = (
            f"Fig. 5: p_mix = {p} without co-training (the mixed batch alone when r < p_mix).",
            {"mix": {"p_mix": p, "cotrain": False}})
    for b in SWEEP:
        out[f"fig6_beta{b}"] = (f"Fig. 6: beta = {b}, p_mix = 0 (no mixed image).",
                                {"mix": {"p_mix": 0.0}, "loss": {"beta": b}})
    for a in SWEEP:
        out[f"fig7_alpha{a}"] = (f"Fig. 7: alpha = {a}, beta = 0.5, p_mix = 0.8.",
                                 {"loss": {"alpha": a, "beta": 0.5}})
    for method in ("none", "cutout", "cutmix", "mixup", "fermix"):
        out[f"fig8_{method}"] = (
            f"Fig. 8: {method} with co-training, no flip/crop, vanilla ResNet-18.",
            {**vanilla(method=method), "aug": {"preset": "none"}})
    out.update(arms())
    out["rafdb_landmark_fermix"] = (
        "Beyond the paper: FERMixNet with FERMix's regions placed by each face's landmarks "
        "(mix.method fermix_landmarks; compare with table1_fermixnet). RAF-DB's "
        "Annotation/manual points are used when present; faces without them get the fixed "
        "regions.", {"mix": {"method": "fermix_landmarks"}})
    return out


# `fermixnet compare --arms` presets (issue 20): the project's occluders drawn on training faces.
OCCLUDERS = {"occluders": {"p": 0.5, "families": ["mask", "hand", "hat"]}}


def arms() -> dict[str, tuple[str, dict]]:
    """The recipes of `fermixnet compare`'s arms beyond Table 1 (src/fermixnet/demo/arms.py)."""
    return {
        "arm_resnet18_occluders": (
            "compare arm resnet18-occluders: vanilla ResNet-18, no FERMix; realistic occluders "
            "(mask, hand, hat; p 0.5) drawn on training faces by their landmarks.",
            {**vanilla(method="none"), "aug": OCCLUDERS}),
        "arm_fermixnet_occluders": (
            "compare arm fermixnet-occluders: FERMixNet with realistic occluders (mask, hand, "
            "hat; p 0.5) drawn on training faces by their landmarks; test on the other families.",
            {"aug": OCCLUDERS}),
        "arm_fermixnet_landmarks_occluders": (
            "compare arm fermixnet-landmarks-occluders: FERMixNet with FERMix's regions placed "
            "by each face's landmarks and realistic occluders (mask, hand, hat; p 0.5); test on "
            "the other families.", {"aug": OCCLUDERS, "mix": {"method": "fermix_landmarks"}}),
    }


def main() -> None:
    """Write every ablation YAML next to this script (and remove none: names are stable)."""
    for name, (comment, body) in configs().items():
        text = f"# {comment}\n# Generated by configs/ablations/generate.py; edit that script.\n"
        text += yaml.safe_dump({"_base_": BASE, **body}, sort_keys=False)
        (HERE / f"{name}.yaml").write_text(text)
    print(f"wrote {len(configs())} configs to {HERE}")


if __name__ == "__main__":
    main()
