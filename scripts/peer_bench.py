#!/usr/bin/env python3
"""The training steps of `leantune bench methods`, in PyTorch, for its "PyTorch" column.

Not part of CI. Needs: pip install torch transformers galore-torch lion-pytorch bitsandbytes
(galore-torch imports bitsandbytes). `leantune bench methods --peer python3` runs it in the same run and
merges its JSON; by hand:

    python3 scripts/peer_bench.py --shape dim=576,ffn=1536,layers=30,heads=9,kv_heads=3,vocab=49152,tied=1,rope_theta=100000 \
        --batch 4 --seq 256 --threads 2 --repetitions 5 --methods adamw,adamw-fused,lion,sgd,mezo,galore --output peer.json

Each method runs in its own child process so that its peak RSS is its own. Methods without a PyTorch
package (DiZO, QFT, AdaRankGrad, LSP-Offload) are skipped. A method may carry a precision, as `bench methods
--precisions` labels its rows ("adamw bf16"): bf16 runs the gradient methods under
torch.autocast("cpu", dtype=torch.bfloat16) with fp32 master weights, and MeZO with the model in bf16
(model.to(torch.bfloat16), as MeZO's own code runs fp16). Before a method is built, its weights, gradients and
optimizer state are estimated; one that needs more than the machine's MemAvailable is reported as out of memory
("outOfMemory": the estimate in bytes) instead of being run. Settings follow LeanTune's defaults: AdamW
betas (0.9, 0.999) eps 1e-8, clip 1.0 where LeanTune clips; Lion betas (0.9, 0.99); SGD momentum 0.9; MeZO ε 1e-3;
GaLore rank 128, T 200, α 0.25 on the attention and MLP matrices, updates inside backward.
"""
import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

LR = 1e-6


def parse_shape(shape):
    return dict(kv.split("=") for kv in shape.split(","))


def parameter_count(s):
    d, f, layers, heads, kv, vocab = (int(s[k]) for k in ("dim", "ffn", "layers", "heads", "kv_heads", "vocab"))
    kv_dim = d // heads * kv
    block = 2 * d * d + 2 * d * kv_dim + 3 * d * f + 2 * d
    return layers * block + vocab * d * (1 if s["tied"] == "1" else 2) + d


def bytes_per_parameter(method, precision):
    """Weights, gradients and optimizer state per parameter, as PyTorch holds them for this method (a lower bound:
    activations and the allocator come on top)."""
    if method == "mezo":
        return 2 if precision == "bf16" else 4  # weights only
    gradients = 0 if method in ("adamw-fused", "galore") else 4  # the hooks free each gradient once applied
    state = {"adamw": 8, "adamw-fused": 8, "lion": 4, "sgd": 4}.get(method, 0)  # GaLore's low-rank moments left out
    autocast_copies = 2 if precision == "bf16" else 0  # autocast caches a bf16 copy of each weight during forward
    return 4 + gradients + state + autocast_copies


def available_bytes():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return None


def build(shape, seq, threads, precision, method):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    s = parse_shape(shape)
    config = LlamaConfig(hidden_size=int(s["dim"]), intermediate_size=int(s["ffn"]), num_hidden_layers=int(s["layers"]),
                         num_attention_heads=int(s["heads"]), num_key_value_heads=int(s["kv_heads"]),
                         vocab_size=int(s["vocab"]), tie_word_embeddings=s["tied"] == "1",
                         rope_theta=float(s["rope_theta"]), max_position_embeddings=max(seq, 2048), rms_norm_eps=1e-5)
    bf16_weights = precision == "bf16" and method == "mezo"
    if bf16_weights:  # made in bf16 directly: a 7B model made in fp32 first would need 27 GB
        torch.set_default_dtype(torch.bfloat16)
    model = LlamaForCausalLM(config).train()
    return torch, (model if bf16_weights else model.float()), int(s["vocab"])


def in_backward(model, make):
    """An optimizer per parameter, stepped as soon as its gradient is complete (PyTorch's optimizer-in-backward)."""
    optimizers = {}
    for p in model.parameters():
        optimizers[p] = make(p)

        def hook(param):
            optimizers[param].step()
            optimizers[param].zero_grad(set_to_none=True)
        p.register_post_accumulate_grad_hook(hook)


def step_function(method, precision, torch, model, ids):
    params = [p for p in model.parameters()]

    def loss():
        if precision == "bf16" and method != "mezo":
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return model(input_ids=ids, labels=ids).loss
        return model(input_ids=ids, labels=ids).loss

    def with_optimizer(optimizer, clip):
        def step():
            loss().backward()
            if clip:
                torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        return step

    if method == "adamw":
        return with_optimizer(torch.optim.AdamW(params, lr=LR, weight_decay=0.0, foreach=True), True), \
            "torch.optim.AdamW (foreach), clip 1.0"
    if method == "adamw-fused":
        in_backward(model, lambda p: torch.optim.AdamW([p], lr=LR, weight_decay=0.0))
        return (lambda: loss().backward()), "torch.optim.AdamW per parameter in post-accumulate-grad hooks"
    if method == "lion":
        from lion_pytorch import Lion
        return with_optimizer(Lion(params, lr=LR), True), "lion_pytorch.Lion, clip 1.0"
    if method == "sgd":
        return with_optimizer(torch.optim.SGD(params, lr=LR, momentum=0.9), True), "torch.optim.SGD momentum 0.9, clip 1.0"
    if method == "galore":
        from galore_torch import GaLoreAdamW
        matrices = {id(p) for name, p in model.named_parameters()
                    if p.dim() == 2 and any(k in name for k in ("self_attn", "mlp"))}

        def make(p):
            group = {"params": [p]}
            if id(p) in matrices:
                group.update(rank=128, update_proj_gap=200, scale=0.25, proj_type="std")
            return GaLoreAdamW([group], lr=LR, weight_decay=0.0)
        in_backward(model, make)
        return (lambda: loss().backward()), "galore_torch.GaLoreAdamW per parameter in hooks (layer-wise), rank 128, full SVD"
    if method == "mezo":
        eps = 1e-3
        state = {"seed": 0}

        def perturb(scale, seed):
            g = torch.Generator().manual_seed(seed)
            for p in params:
                p.data.add_(torch.randn(p.shape, generator=g, dtype=p.dtype), alpha=scale)

        @torch.no_grad()
        def step():
            state["seed"] += 1
            seed = state["seed"]
            perturb(eps, seed)
            plus = loss()
            perturb(-2 * eps, seed)
            minus = loss()
            perturb(eps, seed)
            projected = float(plus - minus) / (2 * eps)
            perturb(-LR * projected, seed)
        return step, "MeZO's loop: z ~ N(0, 1) regenerated from a seed, in place, two forwards" + (", model in bf16" if precision == "bf16" else "")
    return None, None


def child(args):
    method, _, precision = args.child.partition(" ")
    precision = precision or "fp32"
    if method not in ("adamw", "adamw-fused", "lion", "sgd", "mezo", "galore"):
        print(json.dumps(None))
        return
    need, available = parameter_count(parse_shape(args.shape)) * bytes_per_parameter(method, precision), available_bytes()
    if available is not None and need > available:
        print(json.dumps({"outOfMemory": need, "implementation": f"estimated {need / 2**30:.1f} GiB of weights, gradients and "
                          f"optimizer state > {available / 2**30:.1f} GiB available: not run"}))
        return
    torch, model, vocab = build(args.shape, args.seq, args.threads, precision, method)
    ids = torch.randint(0, vocab, (args.batch, args.seq), generator=torch.Generator().manual_seed(2))
    step, implementation = step_function(method, precision, torch, model, ids)
    if precision == "bf16" and method != "mezo":
        implementation += ", torch.autocast(cpu, bfloat16)"
    step()  # warm-up (GaLore's first refresh happens here, as in LeanTune's benchmark)
    times = []
    for _ in range(args.repetitions):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    print(json.dumps({"medianSeconds": statistics.median(times), "peakRSS": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                      "implementation": f"{implementation}; torch {torch.__version__}"}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shape", required=True, help="dim=…,ffn=…,layers=…,heads=…,kv_heads=…,vocab=…,tied=0|1,rope_theta=…")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seq", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--methods", default="adamw,adamw-fused,lion,sgd,mezo,galore")
    parser.add_argument("--output", help="JSON file for the results (stdout when missing)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    rows = {}
    for method in args.methods.split(","):
        command = [sys.executable, __file__, "--child", method] + [a for a in sys.argv[1:]]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            sys.exit(f"peer_bench.py: {method} failed:\n{result.stderr}")
        row = json.loads(result.stdout.strip().splitlines()[-1])
        if row is None:
            print(f"PyTorch {method}: no PyTorch package, skipped", file=sys.stderr)
            continue
        rows[method] = row
        if "outOfMemory" in row:
            print(f"PyTorch {method}: out of memory ({row['implementation']})", file=sys.stderr)
            continue
        print(f"PyTorch {method}: median {row['medianSeconds']:.3f} s, peak RSS {row['peakRSS'] / 2**30:.2f} GiB ({row['implementation']})",
              file=sys.stderr)
    text = json.dumps({"rows": rows}, indent=2)
    if args.output:
        with open(args.output, "w") as f:
            f.write(text + "\n")
    else:
        print(text)


if __name__ == "__main__":
    main()
