"""A small CNN (Conv2d, ReLU, MaxPool2d, Linear) on scikit-learn's bundled 8x8 digits, trained with Adam.

    python examples/cnn_digits.py            # on clgrad
    python examples/cnn_digits.py --torch    # the same code on PyTorch (CPU)

Prints the test accuracy and the training steps/s; main(argv) returns them as a dict.
"""
import argparse
import sys

import numpy as np
from tqdm import tqdm

from _backend import Timer, add_backend_args, backend_name, get_backend


def load_data(seed=0):
    from sklearn.datasets import load_digits  # (imported here: make_step needs no scikit-learn)
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)  # N, C, H, W
    return train_test_split(X, y.astype(np.int64), test_size=0.2, random_state=seed, stratify=y)


def make_model(nn, channels=32):
    c = channels
    return nn.Sequential(
        nn.Conv2d(1, c, kernel_size=3, padding=1), nn.ReLU(),        # c x 8 x 8
        nn.MaxPool2d(2),                                               # c x 4 x 4
        nn.Conv2d(c, 2 * c, kernel_size=3, padding=1), nn.ReLU(),     # 2c x 4 x 4
        nn.MaxPool2d(2),                                               # 2c x 2 x 2
        nn.Flatten(),
        nn.Linear(2 * c * 2 * 2, 64), nn.ReLU(),
        nn.Linear(64, 10),
    )


def accuracy(torch, model, X, y):
    model.eval()
    with torch.no_grad():
        pred = model(X).argmax(dim=1)
    model.train()
    return (pred == y).float().mean().item()


def make_step(torch, nn, F, batch_size=64, channels=32, lr=3e-3):
    """One training step on a fixed random batch (for benchmarks): returns step() -> loss tensor."""
    model = make_model(nn, channels)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    x = torch.randn(batch_size, 1, 8, 8)
    y = torch.randint(0, 10, (batch_size,))

    def step():
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss
    return step


def main(argv=None):
    ap = add_backend_args(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--channels", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-3)
    args = ap.parse_args(argv)
    torch, nn, F, DataLoader, TensorDataset = get_backend(args.torch)
    torch.manual_seed(args.seed)
    print(f"backend: {backend_name(torch)}")

    X_train, X_test, y_train, y_test = load_data(args.seed)
    loader = DataLoader(TensorDataset(torch.tensor(X_train), torch.tensor(y_train)),
                        batch_size=args.batch_size, shuffle=True)
    X_test, y_test = torch.tensor(X_test), torch.tensor(y_test)

    model = make_model(nn, args.channels)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    loss_fn = nn.CrossEntropyLoss()

    timer, steps = Timer(torch), 0
    bar = tqdm(total=args.epochs * len(loader), desc="cnn_digits", disable=args.quiet)
    for epoch in range(args.epochs):
        for xb, yb in loader:
            loss = loss_fn(model(xb), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            steps += 1
            timer.step()
            bar.update(1)
            if steps % 20 == 0:
                bar.set_postfix(epoch=epoch, loss=f"{loss.item():.3f}")
    bar.close()
    sps = timer.steps_per_s()

    acc = accuracy(torch, model, X_test, y_test)
    print(f"test accuracy {acc:.4f} after {steps} steps; {sps:.1f} steps/s")
    return {"metric": acc, "accuracy": acc, "final_loss": loss.item(), "steps": steps, "steps_per_s": sps}


if __name__ == "__main__":
    main(sys.argv[1:])
