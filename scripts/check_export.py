#!/usr/bin/env python3
"""Checks a directory written by `leantune export` with Hugging Face transformers (not in CI).

    pip install torch transformers
    leantune export --model cache/SmolLM2-135M-Instruct.Q4_1.gguf --output /tmp/smol-hf
    python3 scripts/check_export.py /tmp/smol-hf [path/to/leantune]

transformers loads the directory (config.json, safetensors, tokenizer.json) and computes, on a text,
the token ids, the mean next-token loss and a greedy continuation. LeanTune's `eval` and `generate`
run on the same directory and text; the script prints both sides and fails if the losses differ by
more than 1e-4 relative or the continuations differ.
"""
import pathlib
import re
import subprocess
import sys
import tempfile

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

TEXT = "Once upon a time, there was a little girl who loved to read books about the stars and the sea."
PROMPT = sys.argv[3] if len(sys.argv) > 3 else "The capital of France is"


def main():
    directory = sys.argv[1]
    leantune = sys.argv[2] if len(sys.argv) > 2 else str(pathlib.Path(__file__).resolve().parent.parent / ".build/release/leantune")
    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32)
    model.eval()
    ids = tokenizer(TEXT, return_tensors="pt").input_ids
    with torch.no_grad():
        hf_loss = model(ids, labels=ids).loss.item()
        prompt = tokenizer(PROMPT, return_tensors="pt").input_ids
        out = model.generate(prompt, max_new_tokens=12, do_sample=False)
    hf_text = PROMPT + tokenizer.decode(out[0, prompt.shape[1]:], skip_special_tokens=True)

    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write(TEXT)
    report = subprocess.run([leantune, "eval", "--model", directory, "--data", f.name], check=True,
                            capture_output=True, text=True).stdout
    lt_loss = float(re.search(r"loss ([0-9.]+)", report).group(1))
    lt_text = subprocess.run([leantune, "generate", "--model", directory, "--prompt", PROMPT, "--temperature", "0",
                              "--max-tokens", "12"], check=True, capture_output=True, text=True).stdout.rstrip("\n")

    print(f"tokens: {ids.shape[1]} (transformers)")
    print(f"loss:   transformers {hf_loss:.6f}   leantune {lt_loss:.6f}")
    print(f"greedy: transformers {hf_text!r}")
    print(f"        leantune     {lt_text!r}")
    ok = abs(hf_loss - lt_loss) <= 1e-4 * abs(hf_loss) and hf_text == lt_text
    print("OK" if ok else "MISMATCH")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
