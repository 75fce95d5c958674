#!/usr/bin/env python3
"""Writes reference fixtures for LeanTune's parity tests. Run by hand; the outputs are committed
under Tests/Fixtures:

    pip install torch gguf tokenizers transformers
    python3 scripts/make_fixtures.py            # model parity (torch), GGUF blocks (gguf), RoPE scaling (transformers)
    python3 scripts/make_fixtures.py --smollm2 cache/SmolLM2-135M-Instruct.Q4_1.gguf   # tokenizer ids too
    python3 scripts/make_fixtures.py --optimizers   # only the optimizer trajectories (torch, lion-pytorch)
    python3 scripts/make_fixtures.py --architectures [NAME ...]  # only the architecture checkpoints (all, or those named)

Model parity (llm.c's test_gpt2 pattern): for each tiny configuration a random Llama (parameters
drawn in float32, math in float64) runs one batch with a masked target; the inputs, logits, mean
loss and every parameter's gradient are recorded under the Hugging Face names LeanTune uses.
GGUF blocks: random blocks of every quantized type with sane scales, and gguf-py's dequantization.
SmolLM2 tokenizer: the `tokenizers` library rebuilt from the GGUF vocabulary and merges
(Digits + ByteLevel pre-tokenizer, as SmolLM2's tokenizer.json) encodes a list of hard strings.
"""
import base64
import json
import math
import pathlib
import sys

import numpy as np

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


OPTIMIZERS = {
    "adamw": {"lr": 1e-2, "weight_decay": 0.1, "betas": [0.9, 0.999], "eps": 1e-8},
    "lion": {"lr": 1e-3, "weight_decay": 0.1, "betas": [0.9, 0.99]},
    "sgd": {"lr": 2e-2, "weight_decay": 0.01, "momentum": 0.9},  # 5e-2 is unstable on the tied model (loss rises)
    "adam-mini": {"lr": 1e-2, "weight_decay": 0.1, "betas": [0.9, 0.999], "eps": 1e-8},
}


class AdamMiniReference:
    """Adam-mini (Zhang et al. 2024) with the partition of its official code from v1.1, written out in float64: one
    second moment per token row of the embedding and head, per head of q_proj/k_proj, per output row of o_proj and the
    MLP, and per tensor for v_proj and the norms; Adam's first moment and decoupled weight decay as AdamW."""

    def __init__(self, groups, lr, betas, eps, head_dim):
        self.groups, self.lr, self.betas, self.eps, self.head_dim = groups, lr, betas, eps, head_dim
        self.state, self.t = {}, 0

    def zero_grad(self):
        for group in self.groups:
            for _, p in group["params"]:
                p.grad = None

    def block(self, name, p):
        if "q_proj" in name or "k_proj" in name:
            return self.head_dim * p.shape[1]
        if any(k in name for k in ("embed_tokens", "lm_head", "o_proj", "mlp.")):
            return p.shape[1]
        return p.numel()

    def step(self):
        self.t += 1
        b1, b2 = self.betas
        with torch.no_grad():
            for group in self.groups:
                for name, p in group["params"]:
                    size = self.block(name, p)
                    g = p.grad.reshape(-1, size)
                    m, v = self.state.setdefault(name, (torch.zeros_like(g), torch.zeros(g.shape[0], 1)))
                    v.mul_(b2).add_((g * g).mean(dim=1, keepdim=True), alpha=1 - b2)
                    m.mul_(b1).add_(g, alpha=1 - b1)
                    p.mul_(1 - self.lr * group["weight_decay"])
                    h = v.sqrt() / math.sqrt(1 - b2 ** self.t) + self.eps
                    p.sub_((self.lr / (1 - b1 ** self.t) * m / h).reshape(p.shape))


def make_optimizer_steps(name, c, seed, steps=10):
    """Losses of `steps` optimizer steps (the same batch each step) from the parity fixture's initial parameters,
    with torch.optim.AdamW, lion_pytorch.Lion, torch.optim.SGD and AdamMiniReference; norms have no weight decay."""
    from lion_pytorch import Lion
    out = {}
    for opt_name, h in OPTIMIZERS.items():
        g = torch.Generator().manual_seed(seed)
        params = {}
        for pname, shape in parameter_shapes(c).items():
            w = 1 + 0.2 * torch.randn(shape, generator=g) if len(shape) == 1 else 0.3 * torch.randn(shape, generator=g)
            params[pname] = w.float().double().requires_grad_()
        seq = torch.randint(0, c["vocab"], (2, 7), generator=g)
        inputs, targets = seq[:, :-1], seq[:, 1:].clone()
        targets[0, 2] = -1
        decay = [p for n, p in params.items() if p.dim() > 1]
        no_decay = [p for n, p in params.items() if p.dim() == 1]
        groups = [{"params": decay, "weight_decay": h["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}]
        if opt_name == "adamw":
            opt = torch.optim.AdamW(groups, lr=h["lr"], betas=tuple(h["betas"]), eps=h["eps"])
        elif opt_name == "lion":
            opt = Lion(groups, lr=h["lr"], betas=tuple(h["betas"]))
        elif opt_name == "adam-mini":
            named = [{"params": [(n, p) for n, p in params.items() if p.dim() == d], "weight_decay": w}
                     for d, w in ((2, h["weight_decay"]), (1, 0.0))]
            opt = AdamMiniReference(named, h["lr"], tuple(h["betas"]), h["eps"], c["dim"] // c["heads"])
        else:
            opt = torch.optim.SGD(groups, lr=h["lr"], momentum=h["momentum"])
        losses = []
        for _ in range(steps):
            opt.zero_grad()
            loss = F.cross_entropy(forward(c, params, inputs).reshape(-1, c["vocab"]), targets.reshape(-1), ignore_index=-1)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        out[opt_name] = {"hyperparameters": h, "losses": losses}
    return out


ARCHITECTURES = {
    # q/k/v biases; tied embeddings as the small Qwen2.5 models
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM", dict(
        hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=64, rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True,
        use_sliding_window=False, sliding_window=None)),
    # sliding-window attention: 4 keys per query in an 8-token batch, so the window masks
    "mistral": ("MistralConfig", "MistralForCausalLM", dict(
        hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=64, rope_theta=10000.0, rms_norm_eps=1e-5, tie_word_embeddings=False,
        sliding_window=4, head_dim=4)),
    # per-head q/k RMSNorm before RoPE, and head_dim 8 apart from hidden_size / heads = 4 (queries 32 wide)
    "qwen3": ("Qwen3Config", "Qwen3ForCausalLM", dict(
        hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        head_dim=8, max_position_embeddings=64, rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True,
        attention_bias=False, use_sliding_window=False, sliding_window=None)),
    # q, k, v stacked in one qkv_proj and gate, up in one gate_up_proj; a sliding window of 4 in every layer
    "phi3": ("Phi3Config", "Phi3ForCausalLM", dict(
        hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=64, original_max_position_embeddings=64, rope_theta=10000.0, rms_norm_eps=1e-5,
        tie_word_embeddings=False, sliding_window=4, pad_token_id=None)),
    # YaRN scaling (Qwen2.5's long context): frequencies ramped between interpolation and extrapolation, cos and
    # sin scaled by 0.1·ln 4 + 1
    "qwen2-yarn": ("Qwen2Config", "Qwen2ForCausalLM", dict(
        hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
        max_position_embeddings=64, rope_theta=10000.0, rms_norm_eps=1e-6, tie_word_embeddings=True,
        use_sliding_window=False, sliding_window=None,
        rope_scaling={"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 16})),
    # LongRoPE (Phi-3.5): per-pair short factors below the original 32 positions (the test stays below), cos and
    # sin scaled by √(1 + ln 4 / ln 32)
    "phi3-longrope": ("Phi3Config", "Phi3ForCausalLM", dict(
        hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
        max_position_embeddings=128, original_max_position_embeddings=32, rope_theta=10000.0, rms_norm_eps=1e-5,
        tie_word_embeddings=False, pad_token_id=None,
        rope_scaling={"rope_type": "longrope", "short_factor": [1.0, 1.5, 2.0, 3.0],
                      "long_factor": [2.0, 4.0, 8.0, 16.0]})),
    # Gemma: (1 + w) norms, GeGLU, embeddings scaled by √16 = 4, head_dim set (Gemma's default is 256)
    "gemma": ("GemmaConfig", "GemmaForCausalLM", dict(
        hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        head_dim=4, max_position_embeddings=64, rope_theta=10000.0, rms_norm_eps=1e-6, tie_word_embeddings=True,
        hidden_activation="gelu_pytorch_tanh", pad_token_id=None)),
    # Gemma 2: output norms, scores scaled by 1/√6 (query_pre_attn_scalar) and soft-capped at 3, logits at 5; the first
    # layer slides over 4 keys, the second is global
    "gemma2": ("Gemma2Config", "Gemma2ForCausalLM", dict(
        hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        head_dim=8, max_position_embeddings=64, rope_theta=10000.0, rms_norm_eps=1e-6, tie_word_embeddings=True,
        query_pre_attn_scalar=6, attn_logit_softcapping=3.0, final_logit_softcapping=5.0, sliding_window=4,
        pad_token_id=None)),
    # Gemma 3: (1 + w) q/k norms; the sliding layer turns at base 100, the global one at 10⁶ with linear scaling by 2
    "gemma3": ("Gemma3TextConfig", "Gemma3ForCausalLM", dict(
        hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        head_dim=8, max_position_embeddings=64, rms_norm_eps=1e-6, tie_word_embeddings=True,
        query_pre_attn_scalar=6, sliding_window=4, layer_types=["sliding_attention", "full_attention"],
        rope_parameters={"full_attention": {"rope_type": "linear", "factor": 2.0, "rope_theta": 1000000.0},
                         "sliding_attention": {"rope_type": "default", "rope_theta": 100.0}},
        pad_token_id=None)),
}


def make_architecture(name, seed=7):
    """A small random checkpoint of one architecture, written with transformers' save_pretrained into
    Tests/Fixtures/architectures/NAME/ with a byte-level BPE tokenizer of 260 tokens, and reference.json: a batch's
    inputs and targets, its mean loss, every parameter's gradient, the logits and 20 greedy tokens."""
    import transformers
    from tokenizers import Tokenizer, models, pre_tokenizers, decoders
    config_class, model_class, settings = ARCHITECTURES[name]
    out = OUT / "architectures" / name
    out.mkdir(parents=True, exist_ok=True)
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {c: i for i, c in enumerate(sorted(alphabet))}
    merges = [("t", "h"), ("th", "e"), ("Ġ", "t"), ("Ġt", "h")]
    for a, b in merges:
        vocab[a + b] = len(vocab)
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.save(str(out / "tokenizer.json"))
    (out / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "PreTrainedTokenizerFast"}) + "\n")
    torch.manual_seed(seed)
    config = getattr(transformers, config_class)(vocab_size=len(vocab), bos_token_id=None, eos_token_id=None, **settings)
    config._attn_implementation = "eager"  # soft-capping needs it; the same maths as sdpa elsewhere
    model = getattr(transformers, model_class)(config).float()
    with torch.no_grad():  # biases and norms away from their zero and one initialisation, so that they matter
        for pname, p in model.named_parameters():
            if pname.endswith(".bias"):
                p.normal_(0, 0.3)
            elif p.dim() == 1:
                p.copy_(1 + 0.2 * torch.randn_like(p))
            else:
                p.normal_(0, 0.3)
    model.save_pretrained(out, safe_serialization=True)
    g = torch.Generator().manual_seed(seed)
    seq = torch.randint(0, len(vocab), (2, 9), generator=g)
    inputs, targets = seq[:, :-1], seq[:, 1:]
    model = model.double()
    logits = model(input_ids=inputs).logits
    loss = F.cross_entropy(logits.reshape(-1, len(vocab)), targets.reshape(-1))
    loss.backward()
    greedy = model.generate(input_ids=inputs[:1, :4], max_new_tokens=20, do_sample=False, min_new_tokens=20)
    reference = {
        "inputs": inputs.flatten().tolist(), "targets": targets.flatten().tolist(), "batch": 2, "length": 8,
        "loss": loss.item(), "logits": [float(f"{v:.9g}") for v in logits.detach().flatten().tolist()],
        "gradients": {n: [float(f"{v:.9g}") for v in p.grad.flatten().tolist()] for n, p in model.named_parameters()},
        "prompt": inputs[0, :4].tolist(), "greedy": greedy[0, 4:].tolist(),
    }
    (out / "reference.json").write_text(json.dumps(reference, separators=(",", ":")) + "\n")
    print(f"{out.relative_to(OUT.parent.parent)}: loss {loss.item():.6f}")


def make_schedules_and_clipping():
    """transformers' get_scheduler rates (10 warmup steps of 100, peak 3e-4) and torch's clip_grad_norm_ on random gradients."""
    from transformers import get_scheduler
    out = {}
    for name, hf in [("constant", "constant_with_warmup"), ("linear", "linear"), ("cosine", "cosine")]:
        p = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([p], lr=3e-4)
        sch = get_scheduler(hf, opt, num_warmup_steps=10, num_training_steps=100)
        rates = []
        for _ in range(110):
            rates.append(opt.param_groups[0]["lr"])
            opt.step()
            sch.step()
        out[name] = rates
    g = torch.Generator().manual_seed(3)
    grads = [torch.randn(s, generator=g, dtype=torch.float64) * 0.1 for s in [(40, 16), (16,), (7, 9)]]
    ps = [torch.nn.Parameter(torch.zeros_like(x)) for x in grads]
    for p, x in zip(ps, grads):
        p.grad = x.clone()
    norm = torch.nn.utils.clip_grad_norm_(ps, 0.5).item()
    out["clip"] = {"max_norm": 0.5, "norm": norm, "grads": [x.flatten().tolist() for x in grads],
                   "clipped": [p.grad.flatten().tolist() for p in ps]}
    path = OUT / "schedules-and-clipping.json"
    path.write_text(json.dumps(out) + "\n")
    print(f"{path.relative_to(OUT.parent.parent)}: 3 schedules, clip norm {norm:.6f}")


def make_gguf_blocks():
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType as T
    from gguf.quants import dequantize
    rng = np.random.default_rng(7)
    # byte offsets of the f16 scale fields in each block
    scales = {T.Q4_0: [0], T.Q4_1: [0, 2], T.Q8_0: [0], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208]}
    cases = []
    for t in [T.F16, T.BF16, T.Q4_0, T.Q4_1, T.Q8_0, T.Q4_K, T.Q5_K, T.Q6_K]:
        block, size = GGML_QUANT_SIZES[t]
        count = 2 * 256
        if t == T.F16:
            raw = rng.normal(size=count).astype(np.float16).view(np.uint8)
        elif t == T.BF16:
            raw = (rng.normal(size=count).astype(np.float32).view(np.uint32) >> 16).astype(np.uint16).view(np.uint8)
        else:
            raw = rng.integers(0, 256, size=count // block * size, dtype=np.uint8)
            for b in range(count // block):
                for off in scales[t]:
                    raw[b * size + off:b * size + off + 2] = np.array([rng.uniform(0.001, 0.1)], dtype=np.float16).view(np.uint8)
        values = dequantize(raw, t).astype(np.float32).flatten()
        assert values.size == count and np.isfinite(values).all()
        cases.append({"type": int(t), "name": t.name, "count": count,
                      "bytes": base64.b64encode(raw.tobytes()).decode(), "values": [float(f"{v:.9g}") for v in values]})
    path = OUT / "gguf-blocks.json"
    path.write_text(json.dumps(cases, separators=(",", ":")) + "\n")
    print(f"{path.relative_to(OUT.parent.parent)}: {len(cases)} types, {path.stat().st_size} bytes")


HARD_STRINGS = [
    "What is the capital of France?", "Hello world", " leading space", "trailing space ", "  two  spaces  ",
    "tabs\tand\nnewlines\n\n\nthree", "\n", " ", "   ", "\t\t", "a\r\nb", "don't you're we've I'm they'll he'd it's",
    "DON'T YOU'RE", "'s 't", "1234567890", "pi is 3.14159", "in 2024, 1,000,000 people", "x=42;y=-7.5e-3",
    "numbers١٢٣ and ½ ⅓", "naïve café résumé", "Größe Straße", "Ελληνικά κείμενα", "Русский текст", "日本語のテキスト",
    "中文文本测试", "한국어 텍스트", "emoji 😀🎉👍🏽 family 👨‍👩‍👧", "🇫🇷🇯🇵", "math ∑∫√∞ ≠ ≤", "arrows → ← ↔",
    "def f(x):\n    return x * 2\n", "for (int i = 0; i < n; ++i) { a[i] = b[i]; }", "<div class=\"x\">hi</div>",
    "https://example.com/path?q=1&r=2", "user@example.com", "C:\\Users\\name", "snake_case camelCase PascalCase",
    "<|im_start|>user\nHi<|im_end|>\n", "text<|im_end|>more", "<|endoftext|>", "a<|im_start|>b<|im_end|>c",
    "!!!???...", "— – - quotes “”‘’", "\u00a0nbsp\u2009thin", "zero\u200bwidth", "combining e\u0301",
    "ALL CAPS SENTENCE.", "MiXeD CaSe", "    indented code", "end with newline\n", "\ttab start",
    "repeated aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "abc123def456", "v1.2.3-beta+build.7", "$100.00 €50 £20 ¥1000",
    "#hashtag @mention", "line1\rline2", "   \n   \n", "ok.\n\nNew paragraph.", "a  b   c    d",
]


def sampled_lines(count=160, seed=11):
    """Real lines from ../shared/real (GSM8K questions, SST-2 sentences, TinyStories lines), chosen with a fixed seed."""
    import random
    real = OUT.parent.parent.parent / "shared" / "real" / "data"
    pool = [json.loads(l)["question"] for l in (real / "gsm8k" / "test.jsonl").read_text().splitlines()]
    pool += [l.split("\t")[0] for l in (real / "sst2" / "dev.tsv").read_text().splitlines()[1:]]
    pool += [l for l in (real / "tinystories" / "tinystories_sample.txt").read_text().splitlines() if l.strip()]
    return random.Random(seed).sample(pool, count)


def make_rope_scaling():
    """Inverse frequencies and the cos/sin factor of transformers' rope initialisation for each scaling type, at a
    sequence length (seq_len; None: the initial tables) where the type depends on it (dynamic, longrope)."""
    from transformers import LlamaConfig
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS
    cases = []
    short = [1.0 + 0.05 * i for i in range(32)]
    long = [1.0 + 0.9 * i for i in range(32)]
    for scaling, seq_len in [
            ({"rope_type": "linear", "factor": 4.0}, None),
            ({"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
              "original_max_position_embeddings": 8192}, None),
            ({"rope_type": "dynamic", "factor": 4.0}, 2 * 131072),
            ({"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}, None),
            ({"rope_type": "yarn", "factor": 8.0, "original_max_position_embeddings": 16384, "beta_fast": 16.0,
              "beta_slow": 2.0, "mscale": 0.707, "mscale_all_dim": 1.0, "truncate": False}, None),
            ({"rope_type": "longrope", "short_factor": short, "long_factor": long,
              "original_max_position_embeddings": 4096}, None),
            ({"rope_type": "longrope", "short_factor": short, "long_factor": long,
              "original_max_position_embeddings": 4096}, 4097)]:
        config = LlamaConfig(hidden_size=2048, num_attention_heads=32, rope_theta=500000.0, rope_scaling=scaling,
                             max_position_embeddings=131072)
        inv_freq, attention_factor = ROPE_INIT_FUNCTIONS[scaling["rope_type"]](config, "cpu", seq_len=seq_len)
        cases.append({"rope_scaling": scaling, "theta": 500000.0, "head_dim": 64, "max_position_embeddings": 131072,
                      "seq_len": seq_len, "attention_factor": float(attention_factor),
                      "inv_freq": [float(f"{v:.9g}") for v in inv_freq.double().tolist()]})
    path = OUT / "rope-scaling.json"
    path.write_text(json.dumps(cases, separators=(",", ":")) + "\n")
    print(f"{path.relative_to(OUT.parent.parent)}: {len(cases)} cases")


LLAMA3_SPLIT = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"


def make_trained_llama3_bpe():
    """A byte-level BPE with Llama 3's pre-tokenizer, trained by `tokenizers` on text from ../shared/real."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    real = OUT.parent.parent.parent / "shared" / "real" / "data"
    texts = [json.loads(l)["question"] for l in (real / "gsm8k" / "train.jsonl").read_text().splitlines()[:3000]]
    texts += (real / "tinystories" / "tinystories_sample.txt").read_text().split("<|endoftext|>")
    texts += [l.split("\t")[0] for l in (real / "sst2" / "train.tsv").read_text().splitlines()[1:5001]]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=800, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=["<|begin_of_text|>", "<|eot_id|>"], show_progress=False)
    tok.train_from_iterator(texts, trainer)
    path = OUT / "bpe-llama3-split.tokenizer.json"
    tok.save(str(path))
    strings = HARD_STRINGS + ["<|begin_of_text|>Hello<|eot_id|>", "It'S DON'T WE'LL", "12345678", "x\n\n  y", " \t\n z"] + sampled_lines()
    cases = [{"text": s, "ids": tok.encode(s).ids} for s in strings]
    ids = OUT / "bpe-llama3-split.ids.json"
    ids.write_text(json.dumps(cases, ensure_ascii=False, separators=(",", ":")) + "\n")
    print(f"{path.relative_to(OUT.parent.parent)}: {tok.get_vocab_size()} tokens, {path.stat().st_size} bytes; {len(cases)} strings")


def make_trained_sentencepiece_bpe():
    """A Llama 2-style BPE (Prepend/Replace normalizer, byte fallback) trained by `tokenizers` on ../shared/real text.

    Merges are learnt within words (Metaspace during training); the saved tokenizer has Llama 2's normalizer and no
    pre-tokenizer, and the 256 <0xHH> tokens are ordinary vocabulary entries as in Llama 2's tokenizer.json."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    real = OUT.parent.parent.parent / "shared" / "real" / "data"
    texts = [json.loads(l)["question"] for l in (real / "gsm8k" / "train.jsonl").read_text().splitlines()[:3000]]
    texts += [l.split("\t")[0] for l in (real / "sst2" / "train.tsv").read_text().splitlines()[1:5001]]
    byte_tokens = [f"<0x{b:02X}>" for b in range(256)]
    tok = Tokenizer(models.BPE(byte_fallback=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    trainer = trainers.BpeTrainer(vocab_size=900, special_tokens=["<unk>", "<s>", "</s>"] + byte_tokens, show_progress=False)
    tok.train_from_iterator(texts, trainer)
    j = json.loads(tok.to_str())
    j["added_tokens"] = [a for a in j["added_tokens"] if a["content"] in ("<unk>", "<s>", "</s>")]
    j["normalizer"] = {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"},
                                                          {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]}
    j["pre_tokenizer"] = None
    j["decoder"] = {"type": "Sequence", "decoders": [
        {"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"}, {"type": "Fuse"},
        {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}
    tok = Tokenizer.from_str(json.dumps(j))
    path = OUT / "bpe-sentencepiece.tokenizer.json"
    path.write_text(json.dumps(j, ensure_ascii=False, separators=(",", ":")) + "\n")
    strings = [s for s in HARD_STRINGS if "<|" not in s] + ["<s>Hello</s> world", "ʕ•ᴥ•ʔ unseen ✓ chars", "x  y"] + sampled_lines()
    cases = [{"text": s, "ids": tok.encode(s).ids, "decoded": tok.decode(tok.encode(s).ids, skip_special_tokens=False)}
             for s in strings]
    ids = OUT / "bpe-sentencepiece.ids.json"
    ids.write_text(json.dumps(cases, ensure_ascii=False, separators=(",", ":")) + "\n")
    print(f"{path.relative_to(OUT.parent.parent)}: {tok.get_vocab_size()} tokens, {path.stat().st_size} bytes; {len(cases)} strings")


CHAT_TEMPLATES = {
    # HuggingFaceTB/SmolLM2-135M-Instruct (as in its GGUF): ChatML with a default system prompt
    "chatml": ("<|im_start|>", "<|im_end|>",
               "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"),
    # meta-llama/Llama-2-7b-chat-hf
    "llama2": ("<s>", "</s>",
               "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}"),
    # meta-llama/Meta-Llama-3-8B-Instruct
    "llama3": ("<|begin_of_text|>", "<|eot_id|>",
               "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"),
    # mistralai/Mistral-7B-Instruct-v0.2
    "mistral": ("<s>", "</s>",
                "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}"),
    # HuggingFaceH4/zephyr-7b-beta
    "zephyr": ("<s>", "</s>",
               "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}"),
}


def make_chat_templates():
    """Renders each template with Jinja configured as transformers does (trim_blocks, lstrip_blocks)."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment
    def raise_exception(message):
        raise ValueError(message)
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = raise_exception
    with_system = [{"role": "system", "content": "You are a helpful assistant"}, {"role": "user", "content": "Hello"},
                   {"role": "assistant", "content": "  Hi there  "}, {"role": "user", "content": "Who are you?"}]
    without_system = with_system[1:]
    cases = []
    for name, (bos, eos, source) in CHAT_TEMPLATES.items():
        template = env.from_string(source)
        for messages in (with_system, without_system):
            for add in (True, False):
                try:
                    text = template.render(messages=messages, add_generation_prompt=add, bos_token=bos, eos_token=eos)
                except ValueError:
                    text = None  # the template refuses this conversation
                cases.append({"name": name, "template": source, "bos": bos, "eos": eos, "messages": messages,
                              "add_generation_prompt": add, "expected": text})
    path = OUT / "chat-templates.json"
    path.write_text(json.dumps(cases, ensure_ascii=False, indent=1) + "\n")
    print(f"{path.relative_to(OUT.parent.parent)}: {len(cases)} renderings of {len(CHAT_TEMPLATES)} templates")


def make_stories_gguf():
    """stories260K as a GGUF with a `llama` (SentencePiece, score-merged) vocabulary, written by gguf-py from the
    llama2.c files in ../shared/real: Q8_0 matrices where rows are whole blocks, F16 for ffn_down (172 wide), F32 norms."""
    import struct
    import gguf
    from gguf.constants import GGMLQuantizationType as T
    root = OUT.parent.parent.parent / "shared" / "real" / "model" / "stories260K"
    raw = (root / "stories260K.bin").read_bytes()
    dim, hidden, layers, heads, kv_heads, vocab, seq = struct.unpack("<7i", raw[:28])
    floats = np.frombuffer(raw[28:], dtype=np.float32)
    kv_dim = kv_heads * (dim // heads)
    at = 0
    def take(*shape):
        nonlocal at
        n = int(np.prod(shape))
        out = floats[at:at + n].reshape(shape)
        at += n
        return out
    emb = take(vocab, dim); rms_att = take(layers, dim); wq = take(layers, dim, dim); wk = take(layers, kv_dim, dim)
    wv = take(layers, kv_dim, dim); wo = take(layers, dim, dim); rms_ffn = take(layers, dim)
    w1 = take(layers, hidden, dim); w2 = take(layers, dim, hidden); w3 = take(layers, hidden, dim); rms_final = take(dim)
    tok = (root / "tok512.bin").read_bytes()
    pos, pieces, scores = 4, [], []
    for _ in range(vocab):
        score, length = struct.unpack("<fi", tok[pos:pos + 8])
        pieces.append(tok[pos + 8:pos + 8 + length].decode("utf-8"))
        scores.append(score)
        pos += 8 + length
    # SentencePiece form: "▁" for spaces, control tokens for <unk>/<s>/</s>, byte tokens typed as bytes.
    tokens = ["<unk>", "<s>", "</s>"] + [p.replace(" ", "\u2581") for p in pieces[3:]]
    types = [2, 3, 3] + [6 if p.startswith("<0x") and len(p) == 6 else 1 for p in pieces[3:]]
    path = OUT / "stories260K-llama-vocab.gguf"
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_block_count(layers); w.add_embedding_length(dim); w.add_feed_forward_length(hidden)
    w.add_head_count(heads); w.add_head_count_kv(kv_heads); w.add_context_length(seq)
    w.add_layer_norm_rms_eps(1e-5); w.add_rope_freq_base(10000.0)
    w.add_tokenizer_model("llama"); w.add_token_list(tokens); w.add_token_scores(scores); w.add_token_types(types)
    w.add_bos_token_id(1); w.add_eos_token_id(2); w.add_add_bos_token(True); w.add_add_space_prefix(True)
    def put(name, array):
        array = np.ascontiguousarray(array, dtype=np.float32)
        if array.ndim == 1:
            w.add_tensor(name, array)
        elif array.shape[-1] % 32 == 0:
            w.add_tensor(name, gguf.quants.quantize(array, T.Q8_0), raw_dtype=T.Q8_0)
        else:
            w.add_tensor(name, array.astype(np.float16))
    put("token_embd.weight", emb)
    for l in range(layers):
        for name, array in [("attn_norm", rms_att[l]), ("attn_q", wq[l]), ("attn_k", wk[l]), ("attn_v", wv[l]),
                            ("attn_output", wo[l]), ("ffn_norm", rms_ffn[l]), ("ffn_gate", w1[l]), ("ffn_down", w2[l]),
                            ("ffn_up", w3[l])]:
            put(f"blk.{l}.{name}.weight", array)
    put("output_norm.weight", rms_final)
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
    print(f"{path.relative_to(OUT.parent.parent)}: {path.stat().st_size} bytes")


def make_smollm2_tokenizer(gguf_path):
    from gguf import GGUFReader
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from tokenizers import AddedToken
    r = GGUFReader(gguf_path)
    def strings(key):
        f = r.fields[key]
        return [bytes(f.parts[i]).decode("utf-8") for i in f.data]
    tokens, merges = strings("tokenizer.ggml.tokens"), strings("tokenizer.ggml.merges")
    types = [int(r.fields["tokenizer.ggml.token_type"].parts[i][0]) for i in r.fields["tokenizer.ggml.token_type"].data]
    tok = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=[tuple(m.split(" ", 1)) for m in merges]))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(tokens[i], special=True, normalized=False) for i, t in enumerate(types) if t in (3, 4)])
    cases = [{"text": s, "ids": tok.encode(s).ids} for s in HARD_STRINGS + sampled_lines()]
    path = OUT / "smollm2-tokenizer.json"
    path.write_text(json.dumps(cases, ensure_ascii=False, separators=(",", ":")) + "\n")
    print(f"{path.relative_to(OUT.parent.parent)}: {len(cases)} strings, {path.stat().st_size} bytes")


if __name__ == "__main__":
    if "--smollm2" in sys.argv:
        make_smollm2_tokenizer(sys.argv[sys.argv.index("--smollm2") + 1])
        sys.exit(0)
    import torch
    import torch.nn.functional as F
    torch.set_default_dtype(torch.float64)
    if "--architectures" in sys.argv:
        for name in sys.argv[sys.argv.index("--architectures") + 1:] or ARCHITECTURES:
            make_architecture(name)
        sys.exit(0)
    trajectories = {}
    for i, (name, config) in enumerate(CONFIGS.items()):
        if "--optimizers" not in sys.argv:  # --optimizers: only Tests/Fixtures/optimizer-steps.json
            make(name, config, seed=1234 + i)
        trajectories[name] = make_optimizer_steps(name, config, seed=1234 + i)
    (OUT / "optimizer-steps.json").write_text(json.dumps(trajectories, indent=1) + "\n")
    print("Tests/Fixtures/optimizer-steps.json:", {n: {o: round(t["losses"][-1], 4) for o, t in v.items()} for n, v in trajectories.items()})
    if "--optimizers" in sys.argv:
        sys.exit(0)
    make_gguf_blocks()
    make_schedules_and_clipping()
    make_rope_scaling()
    make_trained_llama3_bpe()
    make_trained_sentencepiece_bpe()
    make_chat_templates()
    make_stories_gguf()
