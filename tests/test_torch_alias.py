"""Unmodified PyTorch programs (`import torch`, `import torch.nn as nn`, ...) run on clgrad through the
import alias in tests/torch_alias.py, each in a fresh subprocess (real PyTorch is installed in the venv:
the alias must win and real torch must never load)."""
import os
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ALIAS = os.path.join(ROOT, "tests", "torch_alias.py")

PRELUDE = """\
import sys
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.utils.data import DataLoader, TensorDataset

assert torch.__name__ == "engine", torch.__name__
assert nn.__name__ == "engine.nn" and F.__name__ == "engine.nn.functional" and optim.__name__ == "engine.optim"
assert DataLoader.__module__.startswith("engine."), DataLoader.__module__
torch.manual_seed(0)
"""

EPILOGUE = """\
from tests.torch_alias import real_torch_loaded
assert not real_torch_loaded(), real_torch_loaded()
print("OK")
"""

PROGRAMS = {
    # regression MLP, full batch, SGD with momentum and a StepLR schedule
    "regression_sgd_steplr": """
        x = torch.rand(256, 2) * 4 - 2
        y = (torch.sin(x[:, :1]) + 0.5 * x[:, 1:] ** 2).detach()

        model = nn.Sequential(nn.Linear(2, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 1))
        criterion = nn.MSELoss()
        optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        scheduler = optim.lr_scheduler.StepLR(optimizer, step_size=100, gamma=0.5)

        losses = []
        for epoch in range(300):
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
        print(f"mse {losses[0]:.4f} -> {losses[-1]:.4f}, lr {scheduler.get_last_lr()[0]:.5f}")
        assert losses[-1] < losses[0] / 20, losses[::50]
        assert abs(scheduler.get_last_lr()[0] - 0.05 * 0.5 ** 3) < 1e-9
    """,
    # classifier: three Gaussian blobs, CrossEntropyLoss + Adam + DataLoader
    "classifier_adam_dataloader": """
        centers = torch.tensor([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]])
        labels = torch.arange(300) // 100  # (torch.arange(3).repeat_interleave(100): not in clgrad yet)
        points = centers[labels] + 0.5 * torch.randn(300, 2)
        loader = DataLoader(TensorDataset(points, labels), batch_size=32, shuffle=True)

        model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 3))
        criterion = nn.CrossEntropyLoss()
        optimizer = optim.Adam(model.parameters(), lr=1e-2)

        def full_loss():
            with torch.no_grad():
                return criterion(model(points), labels).item()

        first = full_loss()
        for epoch in range(15):
            for xb, yb in loader:
                optimizer.zero_grad()
                loss = criterion(model(xb), yb)
                loss.backward()
                optimizer.step()
        last = full_loss()
        with torch.no_grad():
            acc = (model(points).argmax(dim=1) == labels).float().mean().item()
        print(f"cross-entropy {first:.4f} -> {last:.4f}, accuracy {acc:.3f}")
        assert last < first / 5
        assert acc > 0.95
    """,
    # tiny CNN: horizontal vs vertical bars in noisy 8x8 images
    "tiny_cnn": """
        n = 128
        imgs = 0.3 * torch.randn(n, 1, 8, 8)
        labels = torch.randint(0, 2, (n,))
        pos = torch.randint(1, 7, (n,))
        for i in range(n):
            if labels[i].item() == 0:
                imgs[i, 0, pos[i].item(), :] += 1.0   # a horizontal bar
            else:
                imgs[i, 0, :, pos[i].item()] += 1.0   # a vertical bar

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv1 = nn.Conv2d(1, 8, kernel_size=3, padding=1)
                self.pool = nn.MaxPool2d(2)
                self.conv2 = nn.Conv2d(8, 8, kernel_size=3, padding=1)
                self.fc = nn.Linear(8 * 2 * 2, 2)

            def forward(self, x):
                x = self.pool(F.relu(self.conv1(x)))
                x = self.pool(F.relu(self.conv2(x)))
                return self.fc(torch.flatten(x, 1))

        model = Net()
        optimizer = optim.Adam(model.parameters(), lr=1e-2)
        losses = []
        for step in range(60):
            optimizer.zero_grad()
            loss = F.cross_entropy(model(imgs), labels)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        print(f"cross-entropy {losses[0]:.4f} -> {losses[-1]:.4f}")
        assert losses[-1] < losses[0] / 5, losses[::10]
    """,
    # tiny attention model: every position must output the sequence's first token
    "tiny_attention": """
        vocab, T, d = 8, 6, 32

        class TinyAttention(nn.Module):
            def __init__(self):
                super().__init__()
                self.tok = nn.Embedding(vocab, d)
                self.pos = nn.Parameter(0.1 * torch.randn(T, d))
                self.attn = nn.MultiheadAttention(d, num_heads=2, batch_first=True)
                self.norm = nn.LayerNorm(d)
                self.out = nn.Linear(d, vocab)

            def forward(self, idx):
                h = self.tok(idx) + self.pos
                a, _ = self.attn(h, h, h, need_weights=False)
                return self.out(self.norm(h + a))

        model = TinyAttention()
        optimizer = optim.AdamW(model.parameters(), lr=1e-2)
        losses = []
        for step in range(150):
            idx = torch.randint(0, vocab, (32, T))
            target = idx[:, :1].expand(32, T)
            logits = model(idx)
            loss = F.cross_entropy(logits.reshape(-1, vocab), target.reshape(-1))
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            losses.append(loss.item())
        first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
        print(f"cross-entropy {first:.4f} -> {last:.4f}")
        assert last < first / 4, losses[::15]
    """,
}


def run_program(source, tmp_path, name="prog"):
    prog = tmp_path / f"{name}.py"
    prog.write_text(source)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([ROOT, env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, ALIAS, str(prog)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)


def test_alias_maps_torch_to_engine(tmp_path):
    src = PRELUDE + textwrap.dedent("""
        import engine
        import torch.nn.functional
        import torch.optim.lr_scheduler
        import torch.utils.data
        assert torch is engine and torch.nn is engine.nn and torch.optim is engine.optim
        assert sys.modules["torch.nn.functional"] is engine.nn.functional
        assert engine.__spec__.name == "engine"          # the engine modules are not relabelled
        from torch.optim.lr_scheduler import StepLR
        assert StepLR.__module__.startswith("engine.optim")
        try:
            import torch.no_such_module
        except ImportError:
            pass
        else:
            raise AssertionError("torch.no_such_module imported")
    """) + EPILOGUE
    r = run_program(src, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip().endswith("OK")


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_torch_program(name, tmp_path):
    r = run_program(PRELUDE + textwrap.dedent(PROGRAMS[name]) + EPILOGUE, tmp_path, name)
    assert r.returncode == 0, f"{name} failed:\n{r.stdout}\n{r.stderr}"
    assert r.stdout.strip().endswith("OK"), r.stdout


def test_example_script_through_alias(tmp_path):
    """examples/gpt.py --torch takes its `import torch` branch; under the alias that is clgrad."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p))
    r = subprocess.run([sys.executable, ALIAS, os.path.join(ROOT, "examples", "gpt.py"), "--torch", "--quiet",
                        "--steps", "10", "--sample-chars", "10", "--checkpoint", str(tmp_path / "gpt.pt")],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "backend: clgrad" in r.stdout, r.stdout
    assert "reloaded model val loss" in r.stdout
