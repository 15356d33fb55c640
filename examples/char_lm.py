"""A makemore-style character language model: embed the previous `--context` characters, concatenate,
an MLP predicts the next one.  Trained on examples/data/coriolanus.txt (Shakespeare, public domain).

    python examples/char_lm.py            # on clgrad
    python examples/char_lm.py --torch    # the same code on PyTorch (CPU)

Reports the validation loss (nats/char) next to two count-based baselines computed from the
training text (unigram: the entropy of the character frequencies; bigram), samples text, and
prints the training steps/s; main(argv) returns them as a dict.
"""
import argparse
import math
import os
import sys

import numpy as np
from tqdm import tqdm

from _backend import DATA_DIR, Timer, add_backend_args, backend_name, get_backend

TEXT_PATH = os.path.join(DATA_DIR, "coriolanus.txt")


def load_text(path=TEXT_PATH):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    ids = np.array([stoi[c] for c in text], dtype=np.int64)
    return text, chars, ids


def count_baselines(train_ids, val_ids, vocab):
    """Cross-entropy (nats/char) on the validation text of add-one-smoothed unigram and bigram counts."""
    uni = np.bincount(train_ids, minlength=vocab) + 1.0
    uni /= uni.sum()
    unigram = float(-np.log(uni[val_ids]).mean())
    big = np.ones((vocab, vocab))
    np.add.at(big, (train_ids[:-1], train_ids[1:]), 1.0)
    big /= big.sum(1, keepdims=True)
    bigram = float(-np.log(big[val_ids[:-1], val_ids[1:]]).mean())
    return unigram, bigram


def windows(ids, context):
    """All (context chars -> next char) pairs of a sequence."""
    idx = np.arange(len(ids) - context)[:, None] + np.arange(context)[None, :]
    return ids[idx], ids[context:]


def make_model(nn, vocab, context=8, n_embd=24, hidden=256):
    return nn.Sequential(
        nn.Embedding(vocab, n_embd),          # (B, context) -> (B, context, n_embd)
        nn.Flatten(),                         # -> (B, context * n_embd)
        nn.Linear(context * n_embd, hidden), nn.Tanh(),
        nn.Linear(hidden, vocab),
    )


def evaluate(torch, F, model, X, Y, batch=4096):
    model.eval()
    total = 0.0
    with torch.no_grad():
        for i in range(0, len(X), batch):
            total += F.cross_entropy(model(X[i:i + batch]), Y[i:i + batch], reduction="sum").item()
    model.train()
    return total / len(X)


def sample(torch, F, model, chars, context, n=200, newline_id=None, generator=None):
    model.eval()
    ctx = [newline_id] * context
    out = []
    with torch.no_grad():
        for _ in range(n):
            logits = model(torch.tensor([ctx]))
            probs = F.softmax(logits, dim=-1)
            ix = torch.multinomial(probs, num_samples=1, generator=generator).item()
            out.append(chars[ix])
            ctx = ctx[1:] + [ix]
    model.train()
    return "".join(out)


def make_step(torch, nn, F, batch_size=64, vocab=60, context=8, n_embd=24, hidden=256, lr=3e-3):
    """One training step on a fixed random batch (for benchmarks): returns step() -> loss tensor."""
    model = make_model(nn, vocab, context, n_embd, hidden)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    x = torch.randint(0, vocab, (batch_size, context))
    y = torch.randint(0, vocab, (batch_size,))

    def step():
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss
    return step


def main(argv=None):
    ap = add_backend_args(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--context", type=int, default=8)
    ap.add_argument("--n-embd", type=int, default=24)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--sample-chars", type=int, default=200)
    args = ap.parse_args(argv)
    torch, nn, F, _, _ = get_backend(args.torch)
    torch.manual_seed(args.seed)
    print(f"backend: {backend_name(torch)}")

    text, chars, ids = load_text()
    vocab, n = len(chars), int(0.9 * len(ids))
    unigram, bigram = count_baselines(ids[:n], ids[n:], vocab)
    freq = np.bincount(ids[:n], minlength=vocab) / n
    entropy = float(-(freq[freq > 0] * np.log(freq[freq > 0])).sum())
    print(f"{len(text)} characters, vocabulary {vocab}; entropy of the training text's character "
          f"frequencies {entropy:.3f} nats/char; count models on the validation text: unigram {unigram:.3f}, "
          f"bigram {bigram:.3f}")
    Xtr, Ytr = (torch.tensor(a) for a in windows(ids[:n], args.context))
    Xva, Yva = (torch.tensor(a) for a in windows(ids[n:], args.context))

    model = make_model(nn, vocab, args.context, args.n_embd, args.hidden)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.steps, eta_min=args.lr / 10)

    timer = Timer(torch)
    for step in (bar := tqdm(range(args.steps), desc="char_lm", disable=args.quiet)):
        ix = torch.randint(0, len(Xtr), (args.batch_size,))
        loss = F.cross_entropy(model(Xtr[ix]), Ytr[ix])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        timer.step()
        if step % 50 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")
    sps = timer.steps_per_s()

    train_loss = evaluate(torch, F, model, Xtr, Ytr)
    val_loss = evaluate(torch, F, model, Xva, Yva)
    gen = torch.Generator().manual_seed(args.seed)
    text_out = sample(torch, F, model, chars, args.context, args.sample_chars, chars.index("\n"), gen)
    print(f"--- sample ---\n{text_out}\n--------------")
    print(f"val loss {val_loss:.3f} nats/char (train {train_loss:.3f}; unigram baseline {unigram:.3f}, "
          f"bigram {bigram:.3f}; perplexity {math.exp(val_loss):.1f}) after {args.steps} steps; {sps:.1f} steps/s")
    return {"metric": val_loss, "val_loss": val_loss, "train_loss": train_loss, "unigram_loss": unigram,
            "unigram_entropy": entropy,
            "bigram_loss": bigram, "sample": text_out, "steps": args.steps, "steps_per_s": sps}


if __name__ == "__main__":
    main(sys.argv[1:])
