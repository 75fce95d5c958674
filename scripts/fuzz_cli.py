#!/usr/bin/env python3
"""Mutation fuzzing of the leantune command line, as a hostile user would do it (issue 20).

Each mutant of a real input file is run through the commands that read it, in a fresh process with a time
limit, and classified: a clean error (non-zero exit with an "Error:" line), accepted (exit 0), a crash (a signal,
or a Swift "Fatal error"), or a hang (over the time limit). Crashing and hanging inputs are kept under OUT/ with
the command that failed. The in-process fuzzer of the test suite (Tests/FuzzTests) covers every loader; this one
covers the commands around them (inspect, eval, generate, validate, inspect-data, train --dry-run).

  scripts/fuzz_cli.py [--count 2000] [--seed 1] [--timeout 20] [--out runs/fuzz-cli]

Run from the repository root with ../shared beside it, after `swift build -c release`.
"""
import argparse, json, os, random, shutil, subprocess, sys, tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REAL = os.path.join(os.path.dirname(ROOT), "shared", "real")
BIN = os.path.join(ROOT, ".build", "release", "leantune")
STORIES = os.path.join(REAL, "model", "stories260K")
INTEGERS = [0, 1, 0x7F, 0x80, 0xFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 1 << 32, 1 << 40, (1 << 63) - 1, (1 << 64) - 1]
NUMBERS = [b"-1", b"0", b"4294967296", b"9223372036854775807", b"99999999999999999999999", b"1e400", b"NaN", b"-0.5"]
SNIPPETS = [b'"', b":", b",", b"{", b"}", b"[", b"]", b"null", b"\\", b"\\ud800", b"\t", b"\n", b"&a ", b"*a", b"? ", b"- ",
            b"\xff", b"\xc3\x28", b"[" * 5000, b"{\"a\":" * 3000, b"x" * 100000]


def mutate(data, rng, hot):
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        at = rng.randrange(max(1, min(len(b), hot) if rng.random() < 0.8 else len(b) or 1))
        kind = rng.randrange(7)
        if kind == 0:
            del b[rng.randrange(len(b) + 1):]
        elif kind == 1 and b:
            b[min(at, len(b) - 1)] ^= 1 << rng.randrange(8)
        elif kind == 2 and len(b) >= 8:
            width = rng.choice([2, 4, 8])
            at = min(at, len(b) - width)
            b[at:at + width] = (rng.choice(INTEGERS) % (1 << (8 * width))).to_bytes(width, "little")
        elif kind == 3 and b:
            del b[at:at + rng.randint(1, 64)]
        elif kind == 4 and b:
            chunk = b[at:at + rng.randint(1, 256)]
            b[rng.randrange(len(b) + 1):0] = chunk * rng.choice([1, 1, 100])
        elif kind == 5:
            digits = [i for i in range(len(b)) if 48 <= b[i] <= 57 and (i == 0 or not 48 <= b[i - 1] <= 57)]
            if digits:
                i = rng.choice(digits); j = i
                while j < len(b) and (48 <= b[j] <= 57 or b[j] == 46):
                    j += 1
                b[i:j] = rng.choice(NUMBERS)
        else:
            b[at:at] = rng.choice(SNIPPETS)
    return bytes(b)


def formats(work):
    """(name, seed path, hot bytes, commands): each command is a list in which MUTANT stands for the mutated file."""
    model, tok = os.path.join(STORIES, "stories260K.bin"), os.path.join(STORIES, "tok512.bin")
    gguf = os.path.join(ROOT, "Tests", "Fixtures", "stories260K-llama-vocab.gguf")
    data = os.path.join(ROOT, "examples", "data", "leo-stories.jsonl")
    shapes = os.path.join(work, "shapes.jsonl")
    with open(shapes, "w") as f:
        for record in [{"text": "Leo the robot."}, {"prompt": "Who is Leo?", "completion": " A robot."},
                       {"instruction": "Name a robot.", "input": "", "output": "Leo"}]:
            f.write(json.dumps(record) + "\n")
    tsv = os.path.join(work, "sst2.tsv")
    with open(os.path.join(REAL, "data", "sst2", "dev.tsv")) as src, open(tsv, "w") as dst:
        dst.writelines(src.readlines()[:30])
    config = lambda train, extra=(): ["--set", f"model.path={model}", "--set", f"model.tokenizer={tok}", "--set", f"data.train={train}",
                                      "--set", "logging.output=" + os.path.join(work, "run")] + list(extra)
    leo = os.path.join(ROOT, "examples", "leo.yaml")
    sst2 = os.path.join(ROOT, "examples", "sst2-stories260k.yaml")
    return [
        ("llama2c", model, 28, [["inspect", "MUTANT", "--tokenizer", tok],
                                ["generate", "--model", "MUTANT", "--tokenizer", tok, "--prompt", "Once", "--max-tokens", "2"]]),
        ("tokenizer.bin", tok, 1 << 20, [["generate", "--model", model, "--tokenizer", "MUTANT", "--prompt", "Once upon", "--max-tokens", "2"]]),
        ("gguf", gguf, 16 << 10, [["inspect", "MUTANT"], ["generate", "--model", "MUTANT", "--prompt", "Once", "--max-tokens", "2"]]),
        ("jsonl", data, 1 << 20, [["eval", "--model", model, "--tokenizer", tok, "--data", "MUTANT", "--seq", "64"],
                                  ["inspect-data", leo] + config("MUTANT"), ["validate", leo] + config("MUTANT")]),
        ("jsonl-shapes", shapes, 1 << 20, [["inspect-data", leo] + config("MUTANT")]),
        ("tsv", tsv, 1 << 20, [["inspect-data", sst2] + config("MUTANT", ["--set", "data.eval=MUTANT", "--set", "data.limit=0"])]),
        ("yaml", leo, 1 << 20, [["validate", "MUTANT"], ["train", "--config", "MUTANT", "--dry-run"], ["inspect-data", "MUTANT"]]),
    ]


def classify(proc_result, timed_out):
    if timed_out:
        return "hang"
    code, out = proc_result.returncode, proc_result.stdout + proc_result.stderr
    if code < 0 or b"Fatal error" in out or code in (132, 133, 134, 136, 139):
        return "crash"
    return "accepted" if code == 0 else ("error" if b"Error" in out or b"error" in out else "other")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--count", type=int, default=2000, help="mutants in all, spread over the formats")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--timeout", type=float, default=20)
    p.add_argument("--out", default=os.path.join(ROOT, "runs", "fuzz-cli"))
    a = p.parse_args()
    if not os.path.exists(BIN):
        sys.exit(f"{BIN} is missing: run swift build -c release first")
    os.makedirs(a.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="leantune-fuzz-cli-")
    rng = random.Random(a.seed)
    table = []
    targets = formats(work)
    for name, seed_path, hot, commands in targets:
        seed = open(seed_path, "rb").read()
        counts = {"tried": 0, "error": 0, "accepted": 0, "crash": 0, "hang": 0, "other": 0}
        for i in range(a.count // len(targets)):
            mutant = os.path.join(work, f"mutant-{name}" + os.path.splitext(seed_path)[1])
            with open(mutant, "wb") as f:
                f.write(mutate(seed, rng, hot))
            command = rng.choice(commands)
            argv = [BIN] + [x.replace("MUTANT", mutant) for x in command]
            shutil.rmtree(os.path.join(work, "run"), ignore_errors=True)
            try:
                r = subprocess.run(argv, capture_output=True, timeout=a.timeout, cwd=ROOT)
                kind = classify(r, False)
            except subprocess.TimeoutExpired:
                r, kind = None, "hang"
            counts["tried"] += 1
            counts[kind] += 1
            if kind in ("crash", "hang", "other"):
                kept = os.path.join(a.out, f"{name}-{i}-{kind}" + os.path.splitext(seed_path)[1])
                shutil.copy(mutant, kept)
                with open(kept + ".txt", "w") as f:
                    f.write(" ".join(argv) + "\n" + ((r.stdout + r.stderr).decode(errors="replace")[-3000:] if r else "timed out") + "\n")
                print(f"{kind}: {name} #{i}: {kept}", file=sys.stderr)
        table.append((name, counts))
    print("| input | mutants | clean errors | accepted | crashes | hangs | other exits |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, c in table:
        print(f"| {name} | {c['tried']} | {c['error']} | {c['accepted']} | {c['crash']} | {c['hang']} | {c['other']} |")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
