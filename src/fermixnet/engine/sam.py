"""Sharpness-aware minimisation (Foret et al., 2021), the optimiser wrapper of the IR-50 runs
(Sec. 4.7).

Each step takes two gradients: at the weights w, to find the ascent direction e = rho g / |g|, and
at w + e, whose gradient the base optimiser then applies to w.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


class SAM(torch.optim.Optimizer):
    """Wrap a base optimiser; usage: `first_step()` after the first backward, `second_step()` after
    the second (or `step(closure)` with a closure that recomputes loss and gradients).

    Args:
        params: parameters to optimise.
        base_optimizer: optimiser class (e.g. `torch.optim.SGD`).
        rho: neighbourhood radius.
        adaptive: ASAM (scale the perturbation by |w|).
        **kwargs: arguments of the base optimiser (lr, momentum, weight_decay, ...).
    """

    def __init__(
        self,
        params,
        base_optimizer: type[torch.optim.Optimizer],
        rho: float = 0.05,
        adaptive: bool = False,
        **kwargs,
    ) -> None:
        if rho <= 0:
            raise ValueError(f"SAM rho must be > 0, got {rho}")
        super().__init__(params, dict(rho=rho, adaptive=adaptive, **kwargs))
        self.base_optimizer = base_optimizer(self.param_groups, **kwargs)
        # Share the groups so that LR schedulers acting on SAM drive the base optimiser.
        self.param_groups = self.base_optimizer.param_groups
        self.defaults.update(self.base_optimizer.defaults)

    @torch.no_grad()
    def _grad_norm(self) -> torch.Tensor:
        norms = [
            ((torch.abs(p) if group["adaptive"] else 1.0) * p.grad).norm(p=2)
            for group in self.param_groups
            for p in group["params"]
            if p.grad is not None
        ]
        if not norms:
            return torch.tensor(0.0)
        device = norms[0].device
        return torch.norm(torch.stack([n.to(device) for n in norms]), p=2)

    @torch.no_grad()
    def first_step(self, zero_grad: bool = True) -> None:
        """Move to w + e(w) and remember w."""
        scale_base = self._grad_norm() + 1e-12
        for group in self.param_groups:
            scale = group["rho"] / scale_base
            for p in group["params"]:
                if p.grad is None:
                    continue
                self.state[p]["old_p"] = p.detach().clone()
                e_w = (torch.pow(p, 2) if group["adaptive"] else 1.0) * p.grad * scale.to(p)
                p.add_(e_w)
        if zero_grad:
            self.zero_grad()

    @torch.no_grad()
    def second_step(self, zero_grad: bool = True) -> None:
        """Return to w and apply the base optimiser with the gradient taken at w + e(w)."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None or "old_p" not in self.state[p]:
                    continue
                p.copy_(self.state[p].pop("old_p"))
        self.base_optimizer.step()
        if zero_grad:
            self.zero_grad()

    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> None:  # type: ignore[override]
        """Full SAM step; `closure` must run forward and backward and return the loss."""
        if closure is None:
            raise ValueError("SAM.step needs a closure (or call first_step/second_step)")
        self.first_step(zero_grad=True)
        with torch.enable_grad():
            closure()
        self.second_step()

    def state_dict(self) -> dict:
        """The base optimiser's state (the perturbation is transient)."""
        return self.base_optimizer.state_dict()

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore the base optimiser's state."""
        self.base_optimizer.load_state_dict(state_dict)
        self.param_groups = self.base_optimizer.param_groups
