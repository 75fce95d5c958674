#!/usr/bin/env python3
"""The precision suite of experiments/sst2-smollm2.sh in PyTorch: does bf16 autocast end within 2% of fp32?

Issue 19 asks LeanTune's bf16 compute to end SST-2 training within 2% of fp32's final training loss. This runs
the same protocol in PyTorch with transformers, so that the gap of bf16 autocast as PyTorch does it (fp32 master
weights, bf16 operands for every linear layer) can be set beside ours: SmolLM2-135M-Instruct as a Hugging Face
directory (`leantune export --model cache/SmolLM2-135M-Instruct.Q4_1.gguf --output DIR`: the same fp32 weights
LeanTune trains), 1000 training and 500 dev sentences of SST-2's train.tsv (disjoint, shuffled with seed 0),
prompt "<sentence> It was", label words " terrible" / " great", the gold label word's loss, batch 16, AdamW
(lr 1e-5, betas 0.9/0.999, eps 1e-8, no weight decay), constant rate, no clipping, 100 steps. The batches come
from this script's own shuffle (seed = --seed), not LeanTune's, so compare gaps, not losses.

Not part of CI. Needs torch and transformers.

    python3 experiments/torch_precision_sst2.py --model DIR --data ../shared/real/data/sst2/train.tsv \
        --precision bf16 --seed 0 --output runs/torch-precision-sst2/adamw-bf16.json
"""
import argparse
import csv
import json
import random
import time

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

LABEL_WORDS = [" terrible", " great"]


def read_rows(path):
    with open(path, newline="") as f:
        rows = [(r["sentence"], int(r["label"])) for r in csv.DictReader(f, delimiter="\t")]
    random.Random(0).shuffle(rows)
    return rows[:1000], rows[1000:1500]


def encode(tokenizer, text, label):
    prompt = tokenizer(text + " It was", add_special_tokens=False)["input_ids"]
    word = tokenizer(LABEL_WORDS[label], add_special_tokens=False)["input_ids"]
    return prompt, word


def batch_tensors(examples):
    """Right-padded ids, attention mask, and the label-word positions' targets (-100 elsewhere)."""
    length = max(len(p) + len(w) for p, w in examples)
    ids = torch.zeros(len(examples), length, dtype=torch.long)
    mask = torch.zeros(len(examples), length, dtype=torch.long)
    targets = torch.full((len(examples), length), -100, dtype=torch.long)
    for i, (p, w) in enumerate(examples):
        seq = p + w
        ids[i, : len(seq)] = torch.tensor(seq)
        mask[i, : len(seq)] = 1
        # the logits at position t predict token t + 1
        for j, token in enumerate(w):
            targets[i, len(p) + j - 1] = token
    return ids, mask, targets


def loss_of(model, ids, mask, targets, bf16):
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        logits = model(input_ids=ids, attention_mask=mask).logits
    return torch.nn.functional.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), ignore_index=-100)


@torch.no_grad()
def accuracy(model, tokenizer, rows, bf16):
    """The class whose label word has the higher mean token log-likelihood after the prompt."""
    correct = 0
    for start in range(0, len(rows), 32):
        chunk = rows[start : start + 32]
        scores = []
        for label in range(len(LABEL_WORDS)):
            examples = [encode(tokenizer, text, label) for text, _ in chunk]
            ids, mask, targets = batch_tensors(examples)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                logits = model(input_ids=ids, attention_mask=mask).logits.float()
            logp = torch.log_softmax(logits, dim=-1)
            picked = logp.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1) * (targets >= 0)
            scores.append(picked.sum(1) / (targets >= 0).sum(1))
        predicted = torch.stack(scores, 1).argmax(1)
        correct += sum(int(p) == y for p, (_, y) in zip(predicted, chunk))
    return correct / len(rows)


def main():
    a = argparse.ArgumentParser()
    a.add_argument("--model", required=True)
    a.add_argument("--data", required=True)
    a.add_argument("--precision", choices=["fp32", "bf16"], required=True)
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--steps", type=int, default=100)
    a.add_argument("--lr", type=float, default=1e-5)
    a.add_argument("--threads", type=int, default=2)
    a.add_argument("--no-eval", action="store_true", help="skip the dev accuracy before and after (losses only)")
    a.add_argument("--output", required=True)
    o = a.parse_args()
    torch.set_num_threads(o.threads)
    torch.manual_seed(o.seed)
    tokenizer = AutoTokenizer.from_pretrained(o.model)
    model = AutoModelForCausalLM.from_pretrained(o.model, torch_dtype=torch.float32)
    train, dev = read_rows(o.data)
    bf16 = o.precision == "bf16"
    optimizer = torch.optim.AdamW(model.parameters(), lr=o.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    first = None if o.no_eval else accuracy(model, tokenizer, dev, bf16)
    order, losses, start = [], [], time.time()
    shuffle = random.Random(o.seed)
    model.train()
    for step in range(o.steps):
        if len(order) < 16:
            more = list(range(len(train)))
            shuffle.shuffle(more)
            order += more
        picked, order = order[:16], order[16:]
        ids, mask, targets = batch_tensors([encode(tokenizer, *train[i]) for i in picked])
        loss = loss_of(model, ids, mask, targets, bf16)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        print(f"step {step + 1} loss {losses[-1]:.4f} ({time.time() - start:.0f} s)", flush=True)
    model.eval()
    last = None if o.no_eval else accuracy(model, tokenizer, dev, bf16)
    result = {
        "precision": o.precision, "seed": o.seed, "steps": o.steps, "lr": o.lr, "losses": losses,
        "finalLoss": sum(losses[-20:]) / len(losses[-20:]), "accuracy": [first, last],
        "seconds": time.time() - start, "torch": torch.__version__,
    }
    with open(o.output, "w") as f:
        json.dump(result, f)
    print(json.dumps({k: v for k, v in result.items() if k != "losses"}))


if __name__ == "__main__":
    main()
