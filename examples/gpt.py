"""A small GPT trained at character level on examples/data/coriolanus.txt (Shakespeare, public domain).

Token + position embeddings, pre-LayerNorm blocks of causal self-attention (F.scaled_dot_product_attention,
or an explicit masked softmax with --attention explicit) and a GELU MLP, AdamW with a cosine schedule and
gradient clipping.  Prints samples, then saves a checkpoint with torch.save, loads it into a fresh model with
torch.load and checks that the reloaded model gives the same loss.

    python examples/gpt.py            # on clgrad
    python examples/gpt.py --torch    # the same code on PyTorch (CPU)
"""
import argparse
import math
import os
import sys
import tempfile

import numpy as np
from tqdm import tqdm

from _backend import DATA_DIR, Timer, add_backend_args, backend_name, get_backend

TEXT_PATH = os.path.join(DATA_DIR, "coriolanus.txt")


def define_gpt(torch, nn, F):
    """The model classes, written against whichever backend was chosen."""

    class CausalSelfAttention(nn.Module):
        def __init__(self, n_embd, n_head, block_size, dropout, explicit=False):
            super().__init__()
            assert n_embd % n_head == 0
            self.n_head, self.dropout, self.explicit = n_head, dropout, explicit
            self.qkv = nn.Linear(n_embd, 3 * n_embd)
            self.proj = nn.Linear(n_embd, n_embd)
            self.resid_drop = nn.Dropout(dropout)
            if explicit:
                self.attn_drop = nn.Dropout(dropout)
                mask = torch.tril(torch.ones(block_size, block_size, dtype=torch.bool))
                self.register_buffer("mask", mask.view(1, 1, block_size, block_size), persistent=False)

        def forward(self, x):
            B, T, C = x.shape
            q, k, v = self.qkv(x).split(C, dim=2)
            q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
            k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
            v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
            if self.explicit:
                att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
                att = att.masked_fill(~self.mask[:, :, :T, :T], float("-inf"))
                att = self.attn_drop(F.softmax(att, dim=-1))
                y = att @ v
            else:
                y = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                                   dropout_p=self.dropout if self.training else 0.0)
            y = y.transpose(1, 2).contiguous().view(B, T, C)
            return self.resid_drop(self.proj(y))

    class Block(nn.Module):
        def __init__(self, n_embd, n_head, block_size, dropout, explicit=False):
            super().__init__()
            self.ln1 = nn.LayerNorm(n_embd)
            self.attn = CausalSelfAttention(n_embd, n_head, block_size, dropout, explicit)
            self.ln2 = nn.LayerNorm(n_embd)
            self.mlp = nn.Sequential(nn.Linear(n_embd, 4 * n_embd), nn.GELU(),
                                     nn.Linear(4 * n_embd, n_embd), nn.Dropout(dropout))

        def forward(self, x):
            x = x + self.attn(self.ln1(x))
            x = x + self.mlp(self.ln2(x))
            return x

    class GPT(nn.Module):
        def __init__(self, vocab_size, block_size=32, n_embd=64, n_head=4, n_layer=2, dropout=0.0,
                     explicit_attention=False):
            super().__init__()
            self.block_size = block_size
            self.tok_emb = nn.Embedding(vocab_size, n_embd)
            self.pos_emb = nn.Embedding(block_size, n_embd)
            self.drop = nn.Dropout(dropout)
            self.blocks = nn.ModuleList(Block(n_embd, n_head, block_size, dropout, explicit_attention)
                                        for _ in range(n_layer))
            self.ln_f = nn.LayerNorm(n_embd)
            self.head = nn.Linear(n_embd, vocab_size, bias=False)
            self.apply(self._init_weights)

        @staticmethod
        def _init_weights(m):
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, mean=0.0, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Embedding):
                nn.init.normal_(m.weight, mean=0.0, std=0.02)

        def forward(self, idx, targets=None):
            B, T = idx.shape
            pos = torch.arange(T)
            x = self.drop(self.tok_emb(idx) + self.pos_emb(pos))
            for block in self.blocks:
                x = block(x)
            logits = self.head(self.ln_f(x))
            loss = None
            if targets is not None:
                loss = F.cross_entropy(logits.view(B * T, -1), targets.view(B * T))
            return logits, loss

        @torch.no_grad()
        def generate(self, idx, max_new_tokens, temperature=1.0, generator=None):
            for _ in range(max_new_tokens):
                logits, _ = self(idx[:, -self.block_size:])
                probs = F.softmax(logits[:, -1, :] / temperature, dim=-1)
                idx = torch.cat([idx, torch.multinomial(probs, num_samples=1, generator=generator)], dim=1)
            return idx

    return GPT


def load_text(path=TEXT_PATH):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    return text, chars, np.array([stoi[c] for c in text], dtype=np.int64)


def get_batch(torch, data, batch_size, block_size, generator=None):
    """Random (B, T) windows of a 1-d token tensor and the same windows shifted by one."""
    ix = torch.randint(0, len(data) - block_size - 1, (batch_size, 1), generator=generator)
    offsets = ix + torch.arange(block_size)
    return data[offsets], data[offsets + 1]


def estimate_loss(torch, model, data, batch_size, block_size, iters=4, seed=1234):
    """Mean loss over `iters` fixed batches (the same batches every call, so numbers compare)."""
    g = torch.Generator().manual_seed(seed)
    model.eval()
    with torch.no_grad():
        losses = [model(*get_batch(torch, data, batch_size, block_size, g))[1].item() for _ in range(iters)]
    model.train()
    return sum(losses) / len(losses)


def make_step(torch, nn, F, batch_size=16, block_size=32, n_embd=64, n_head=4, n_layer=2, vocab=60, lr=3e-3):
    """One training step on a fixed random batch (for benchmarks): returns step() -> loss tensor."""
    model = define_gpt(torch, nn, F)(vocab, block_size, n_embd, n_head, n_layer)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    x = torch.randint(0, vocab, (batch_size, block_size))
    y = torch.randint(0, vocab, (batch_size, block_size))

    def step():
        _, loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss
    return step


def main(argv=None):
    ap = add_backend_args(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--block-size", type=int, default=32)
    ap.add_argument("--n-embd", type=int, default=64)
    ap.add_argument("--n-head", type=int, default=4)
    ap.add_argument("--n-layer", type=int, default=2)
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--attention", choices=["sdpa", "explicit"], default="sdpa",
                    help="F.scaled_dot_product_attention, or an explicit masked softmax")
    ap.add_argument("--sample-chars", type=int, default=200)
    ap.add_argument("--checkpoint", default=None, help="where to save the checkpoint (default: a temp dir)")
    args = ap.parse_args(argv)
    torch, nn, F, _, _ = get_backend(args.torch)
    torch.manual_seed(args.seed)
    print(f"backend: {backend_name(torch)}")

    text, chars, ids = load_text()
    n = int(0.9 * len(ids))
    train_data, val_data = torch.tensor(ids[:n]), torch.tensor(ids[n:])
    GPT = define_gpt(torch, nn, F)
    config = dict(vocab_size=len(chars), block_size=args.block_size, n_embd=args.n_embd, n_head=args.n_head,
                  n_layer=args.n_layer, dropout=args.dropout, explicit_attention=args.attention == "explicit")
    model = GPT(**config)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{len(text)} characters, vocabulary {len(chars)}; GPT with {n_params / 1e3:.1f}k parameters")

    B, T = args.batch_size, args.block_size
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.99), weight_decay=0.01)
    warmup = max(1, args.steps // 10)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * s / args.steps))))

    val_before = estimate_loss(torch, model, val_data, B, T)
    timer = Timer(torch)
    first_loss = None
    for step in (bar := tqdm(range(args.steps), desc="gpt", disable=args.quiet)):
        xb, yb = get_batch(torch, train_data, B, T)
        _, loss = model(xb, yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
        optimizer.step()
        scheduler.step()
        timer.step()
        if step == 0:
            first_loss = loss.item()
        if step % 25 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")
    sps = timer.steps_per_s()
    last_loss = loss.item()
    train_after = estimate_loss(torch, model, train_data, B, T)
    val_after = estimate_loss(torch, model, val_data, B, T)

    g = torch.Generator().manual_seed(args.seed)
    start = torch.tensor([[chars.index("\n")]])
    out = model.generate(start, args.sample_chars, temperature=0.8, generator=g)[0].tolist()
    text_out = "".join(chars[i] for i in out[1:])
    print(f"--- sample ---\n{text_out}\n--------------")

    # checkpoint round trip
    tmp = None
    path = args.checkpoint
    if path is None:
        tmp = tempfile.TemporaryDirectory()
        path = os.path.join(tmp.name, "gpt.pt")
    torch.save({"model": model.state_dict(), "config": config, "step": args.steps, "chars": "".join(chars)}, path)
    ckpt = torch.load(path)
    model2 = GPT(**ckpt["config"])
    model2.load_state_dict(ckpt["model"])
    reloaded_val = estimate_loss(torch, model2, val_data, B, T)
    size_kb = os.path.getsize(path) / 1024
    if tmp is not None:
        tmp.cleanup()
    print(f"checkpoint: {size_kb:.0f} KB; reloaded model val loss {reloaded_val:.4f} (in memory {val_after:.4f})")
    print(f"val loss {val_before:.3f} -> {val_after:.3f} nats/char (train {train_after:.3f}; batch loss "
          f"{first_loss:.3f} -> {last_loss:.3f}) after {args.steps} steps; {sps:.2f} steps/s")
    return {"metric": val_after, "val_loss": val_after, "val_loss_before": val_before, "train_loss": train_after,
            "first_loss": first_loss, "last_loss": last_loss, "reloaded_val_loss": reloaded_val, "sample": text_out,
            "n_params": n_params, "steps": args.steps, "steps_per_s": sps}


if __name__ == "__main__":
    main(sys.argv[1:])
