"""Small models built from engine ops + nn.Parameter (independent of nn.Linear & co)."""
import math

import engine
from engine import nn


class Lin(nn.Module):
    def __init__(self, i, o, bias=True):
        super().__init__()
        self.weight = nn.Parameter(engine.randn(o, i) * (1.0 / math.sqrt(i)))
        self.bias = nn.Parameter(engine.zeros(o)) if bias else None

    def forward(self, x):
        y = x @ self.weight.t()
        return y + self.bias if self.bias is not None else y


class MLP(nn.Module):
    """x -> fc1 -> relu -> fc2."""

    def __init__(self, i=4, h=8, o=3):
        super().__init__()
        self.fc1 = Lin(i, h)
        self.fc2 = Lin(h, o)

    def forward(self, x):
        return self.fc2(self.fc1(x).relu())


class Norm(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.weight = nn.Parameter(engine.ones(d))
        self.bias = nn.Parameter(engine.zeros(d))

    def forward(self, x):
        mu = x.mean(-1, keepdim=True)
        xc = x - mu
        var = (xc * xc).mean(-1, keepdim=True)
        return xc / (var + 1e-5).sqrt() * self.weight + self.bias


class Attention(nn.Module):
    """Single-head causal self-attention from engine ops."""

    def __init__(self, d):
        super().__init__()
        self.qkv = Lin(d, 3 * d)
        self.proj = Lin(d, d)
        self.d = d

    def forward(self, x):
        T = x.shape[-2]
        q, k, v = self.qkv(x).split(self.d, dim=-1)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(self.d))
        mask = engine.ones(T, T).tril() == 0
        att = att.masked_fill(mask, float("-inf")).softmax(-1)
        return self.proj(att @ v)


class MLPBlock(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.fc = Lin(d, 4 * d)
        self.proj = Lin(4 * d, d)

    def forward(self, x):
        return self.proj(self.fc(x).tanh())


class Block(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.ln1 = Norm(d)
        self.attn = Attention(d)
        self.ln2 = Norm(d)
        self.mlp = MLPBlock(d)

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    def __init__(self, vocab=16, d=16, n_layer=2, T=8):
        super().__init__()
        self.wte = nn.Parameter(engine.randn(vocab, d) * 0.1)
        self.wpe = nn.Parameter(engine.randn(T, d) * 0.1)
        self.blocks = nn.ModuleList([Block(d) for _ in range(n_layer)])
        self.ln_f = Norm(d)
        self.head = Lin(d, vocab, bias=False)

    def forward(self, idx):
        T = idx.shape[-1]
        x = self.wte[idx] + self.wpe[:T]
        for b in self.blocks:
            x = b(x)
        return self.head(self.ln_f(x))


class ReLU(nn.Module):
    def forward(self, x):
        return x.relu()


class Tanh(nn.Module):
    def forward(self, x):
        return x.tanh()


class ActMLP(nn.Module):
    """fc1 -> ReLU -> fc2 -> Tanh -> fc3, with activation modules (for GradientFlow)."""

    def __init__(self, i=4, h=8, o=3):
        super().__init__()
        self.fc1 = Lin(i, h)
        self.act1 = ReLU()
        self.fc2 = Lin(h, h)
        self.act2 = Tanh()
        self.fc3 = Lin(h, o)

    def forward(self, x):
        return self.fc3(self.act2(self.fc2(self.act1(self.fc1(x)))))


class PlainSGD:
    """A minimal optimizer without step hooks (GradientFlow wraps its step)."""

    def __init__(self, params, lr=0.1):
        self.params = list(params)
        self.lr = lr

    def step(self):
        with engine.no_grad():
            for p in self.params:
                if p.grad is not None:
                    p.sub_(p.grad * self.lr)

    def zero_grad(self):
        for p in self.params:
            p.grad = None
