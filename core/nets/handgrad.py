"""The fused MLP's hand-written gradient as an autograd function: the model computes the
summed cross-entropy and its gradient in one pass (``ce_and_grad_many``, core/nets/models.py),
so no autograd graph is kept, only the (M, P) gradient."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from core.nets.models import unflatten


def hand_ce_and_grad(model: nn.Module, thetas: Tensor, x: Tensor, y: Tensor):
    """Summed cross-entropy (M,) and its gradient (M, P) flat in ``thetas``' layout, from the
    model's ``ce_and_grad_many``, in ``thetas``' dtype."""
    ce, grads = model.ce_and_grad_many(unflatten(thetas, model), x, y)
    m = thetas.shape[0]
    flat = [grads[name].reshape(m, -1) for name, _ in model.named_parameters()]
    return ce.to(thetas.dtype), torch.cat(flat, 1).to(thetas.dtype)


class HandGradCE(torch.autograd.Function):
    """Summed cross-entropy (M,) whose gradient w.r.t. thetas (M, P) the model computes by
    hand in the forward pass (``ce_and_grad_many``, core/nets/models.py): no autograd graph, only
    the (M, P) gradient is kept for backward."""

    @staticmethod
    def forward(ctx, thetas: Tensor, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        ce, grad = hand_ce_and_grad(model, thetas, x, y)
        ctx.save_for_backward(grad)
        return ce

    @staticmethod
    def backward(ctx, g: Tensor):
        if torch.is_grad_enabled():  # create_graph: the saved gradient has no graph of its own
            raise RuntimeError(
                "the fused MLP's hand-written gradient has no second derivatives; "
                "use strategy='vmap' or 'loop' for create_graph=True"
            )
        (grad,) = ctx.saved_tensors
        return grad * g.unsqueeze(1), None, None, None
