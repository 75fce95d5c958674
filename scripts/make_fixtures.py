#!/usr/bin/env python3
"""Writes PyTorch reference fixtures for LeanTune's parity tests (llm.c's test_gpt2 pattern).

Run by hand (needs `pip install torch`); the outputs are committed under Tests/Fixtures:

    python3 scripts/make_fixtures.py

For each tiny configuration it builds a random Llama (parameters drawn in float32, math in
float64), runs one batch with a masked target, and records the inputs, logits, mean loss and the
gradient of every parameter, under the Hugging Face parameter names LeanTune uses.
"""
import json
import pathlib

import torch
import torch.nn.functional as F

OUT = pathlib.Path(__file__).resolve().parent.parent / "Tests" / "Fixtures"

CONFIGS = {
    # grouped-query attention, untied head, Hugging Face rotate-half RoPE
    "llama-tiny-gqa-untied-rotate-half": dict(
        dim=16, ffn_dim=32, layers=2, heads=4, kv_heads=2, vocab=24, theta=10000.0,
        rope="rotate-half", tied=False, eps=1e-5),
    # multi-head attention, tied head, llama2.c / GGUF adjacent-pair RoPE
    "llama-tiny-mha-tied-adjacent": dict(
        dim=12, ffn_dim=20, layers=2, heads=3, kv_heads=3, vocab=20, theta=500.0,
        rope="adjacent-pairs", tied=True, eps=1e-5),
}


def parameter_shapes(c):
    d, f, kv = c["dim"], c["ffn_dim"], c["kv_heads"] * (c["dim"] // c["heads"])
    shapes = {"model.embed_tokens.weight": (c["vocab"], d)}
    for l in range(c["layers"]):
        p = f"model.layers.{l}."
        shapes.update({
            p + "input_layernorm.weight": (d,),
            p + "self_attn.q_proj.weight": (d, d),
            p + "self_attn.k_proj.weight": (kv, d),
            p + "self_attn.v_proj.weight": (kv, d),
            p + "self_attn.o_proj.weight": (d, d),
            p + "post_attention_layernorm.weight": (d,),
            p + "mlp.gate_proj.weight": (f, d),
            p + "mlp.up_proj.weight": (f, d),
            p + "mlp.down_proj.weight": (d, f),
        })
    shapes["model.norm.weight"] = (d,)
    if not c["tied"]:
        shapes["lm_head.weight"] = (c["vocab"], d)
    return shapes


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope(x, layout, theta):
    """x: [B, T, heads, E]; position = index along T."""
    t, e = x.shape[1], x.shape[-1]
    half = e // 2
    inv = theta ** (-torch.arange(half, dtype=torch.float64) * 2 / e)
    angle = torch.arange(t, dtype=torch.float64)[:, None] * inv[None, :]
    cos, sin = angle.cos()[None, :, None, :], angle.sin()[None, :, None, :]
    if layout == "rotate-half":
        a, b = x[..., :half], x[..., half:]
        return torch.cat([a * cos - b * sin, a * sin + b * cos], dim=-1)
    a, b = x[..., 0::2], x[..., 1::2]
    return torch.stack([a * cos - b * sin, a * sin + b * cos], dim=-1).flatten(-2)


def forward(c, p, tokens):
    b, t = tokens.shape
    h, k, e = c["heads"], c["kv_heads"], c["dim"] // c["heads"]
    x = p["model.embed_tokens.weight"][tokens]
    mask = torch.ones(t, t, dtype=torch.bool).tril()
    for l in range(c["layers"]):
        q_ = f"model.layers.{l}."
        xn = rms_norm(x, p[q_ + "input_layernorm.weight"], c["eps"])
        q = rope((xn @ p[q_ + "self_attn.q_proj.weight"].T).view(b, t, h, e), c["rope"], c["theta"])
        kk = rope((xn @ p[q_ + "self_attn.k_proj.weight"].T).view(b, t, k, e), c["rope"], c["theta"])
        v = (xn @ p[q_ + "self_attn.v_proj.weight"].T).view(b, t, k, e)
        kk = kk.repeat_interleave(h // k, dim=2)  # query head i reads kv head i // (H/K)
        v = v.repeat_interleave(h // k, dim=2)
        scores = torch.einsum("bihd,bjhd->bhij", q, kk) / e ** 0.5
        probs = scores.masked_fill(~mask, float("-inf")).softmax(-1)
        att = torch.einsum("bhij,bjhd->bihd", probs, v).reshape(b, t, h * e)
        x = x + att @ p[q_ + "self_attn.o_proj.weight"].T
        xn = rms_norm(x, p[q_ + "post_attention_layernorm.weight"], c["eps"])
        hidden = F.silu(xn @ p[q_ + "mlp.gate_proj.weight"].T) * (xn @ p[q_ + "mlp.up_proj.weight"].T)
        x = x + hidden @ p[q_ + "mlp.down_proj.weight"].T
    x = rms_norm(x, p["model.norm.weight"], c["eps"])
    head = p["model.embed_tokens.weight" if c["tied"] else "lm_head.weight"]
    return x @ head.T


def make(name, c, seed):
    g = torch.Generator().manual_seed(seed)
    params = {}
    for pname, shape in parameter_shapes(c).items():
        if len(shape) == 1:
            w = 1 + 0.2 * torch.randn(shape, generator=g)
        else:
            w = 0.3 * torch.randn(shape, generator=g)
        params[pname] = w.float().double().requires_grad_()  # values exactly representable in fp32
    b, t = 2, 6
    seq = torch.randint(0, c["vocab"], (b, t + 1), generator=g)
    inputs, targets = seq[:, :-1], seq[:, 1:].clone()
    targets[0, 2] = -1  # a masked target
    logits = forward(c, params, inputs)
    loss = F.cross_entropy(logits.reshape(-1, c["vocab"]), targets.reshape(-1), ignore_index=-1)
    loss.backward()
    fixture = {
        "config": c,
        "batch": b, "length": t,
        "inputs": inputs.flatten().tolist(), "targets": targets.flatten().tolist(),
        "logits": [float(f"{v:.9g}") for v in logits.detach().flatten().tolist()],
        "loss": loss.item(),
        "parameters": {k: [float(f"{v:.9g}") for v in w.detach().flatten().tolist()] for k, w in params.items()},
        "gradients": {k: [float(f"{v:.9g}") for v in w.grad.flatten().tolist()] for k, w in params.items()},
    }
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.json"
    path.write_text(json.dumps(fixture, separators=(",", ":")) + "\n")
    print(f"{path.relative_to(OUT.parent.parent)}: loss {loss.item():.6f}, {path.stat().st_size} bytes")


if __name__ == "__main__":
    torch.set_default_dtype(torch.float64)
    for i, (name, config) in enumerate(CONFIGS.items()):
        make(name, config, seed=1234 + i)
