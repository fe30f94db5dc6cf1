"""Train a classifier on scikit-learn's handwritten digits (1797 8x8 images, shipped with
scikit-learn, no download), written as a PyTorch tutorial would be (only the import differs).

    python examples/digits_classifier.py --model cnn --epochs 8
    python examples/digits_classifier.py --model mlp --compile
    python examples/digits_classifier.py --amp bf16          # bfloat16 autocast (mixed precision)

With ``--compile`` the whole training step (zero_grad, forward, loss, backward, optimizer step)
is one compiled graph, and so is evaluation. The progress bar is tqdm's when it is installed.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

import graphc as torch
import graphc.nn as nn
import graphc.nn.functional as F
from graphc.utils.data import DataLoader, TensorDataset


def load_digits_split(seed: int = 0, test_fraction: float = 0.2):
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        sys.exit("this example needs scikit-learn: pip install scikit-learn")
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)  # pixel values are 0..16
    labels = digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(labels))
    n_test = int(len(labels) * test_fraction)
    test, train = order[:n_test], order[n_test:]
    mean, std = images[train].mean(), images[train].std()
    images = (images - mean) / std
    as_t = torch.from_numpy
    return (TensorDataset(as_t(images[train]).unsqueeze(1), as_t(labels[train])),
            TensorDataset(as_t(images[test]).unsqueeze(1), as_t(labels[test])))


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.ReLU(), nn.Dropout(0.1),
                                 nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))

    def forward(self, x):
        return self.net(x)


class CNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, kernel_size=3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.Conv2d(16, 32, kernel_size=3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.MaxPool2d(2),                                  # 8x8 -> 4x4
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(0.2), nn.Linear(32 * 4 * 4, 10))

    def forward(self, x):
        return self.classifier(self.features(x))


def progress(loader, desc: str, quiet: bool):
    """The batches of ``loader`` with a progress bar (tqdm's; a plain one without tqdm)."""
    if quiet:
        return _Plain(loader, desc, show=False)
    try:
        from tqdm import tqdm
    except ImportError:
        return _Plain(loader, desc, show=True)
    return tqdm(loader, desc=desc, leave=False, dynamic_ncols=True)


class _Plain:
    def __init__(self, loader, desc: str, show: bool) -> None:
        self.loader, self.desc, self.show, self.done, self.extra = loader, desc, show, 0, ""

    def __iter__(self):
        for item in self.loader:
            yield item
            self.done += 1
            if self.show:
                total, width = len(self.loader), 30
                bar = "#" * int(width * self.done / total)
                end = "\n" if self.done == total else ""
                print(f"\r{self.desc} [{bar:.<{width}}] {self.done}/{total} {self.extra}", end=end, flush=True)

    def set_postfix(self, **values) -> None:
        self.extra = "  ".join(f"{k} {v}" for k, v in values.items())


def evaluate(model, loader: DataLoader, amp=None) -> tuple[float, float]:
    model.eval()
    total_loss, correct, count = 0.0, 0, 0
    with torch.no_grad():
        for x, y in loader:
            with torch.autocast("cpu", dtype=amp, enabled=amp is not None):
                logits = model(x)
            total_loss += F.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(dim=1) == y).sum().item()
            count += y.shape[0]
    return total_loss / count, correct / count


def main(argv=None) -> float:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", choices=["mlp", "cnn"], default="cnn")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--compile", action="store_true", help="compile the whole training step (fullgraph) and evaluation with graphc.compile")
    p.add_argument("--amp", choices=["bf16", "fp16"], default=None,
                   help="mixed precision: autocast to bfloat16 (or float16, with a GradScaler)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--tensorboard", metavar="DIR", help="log loss and accuracy for TensorBoard to DIR "
                   "(needs the tensorboard package; view with: tensorboard --logdir DIR)")
    args = p.parse_args(argv)
    amp = {"bf16": torch.bfloat16, "fp16": torch.float16, None: None}[args.amp]
    # float16 gradients may underflow: scale the loss (bfloat16 has float32's range and needs none)
    scaler = torch.amp.GradScaler("cpu", enabled=args.amp == "fp16")

    torch.manual_seed(args.seed)
    train_set, test_set = load_digits_split(args.seed)
    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True,
                              generator=torch.Generator().manual_seed(args.seed))
    test_loader = DataLoader(test_set, batch_size=256)
    model = MLP() if args.model == "mlp" else CNN()
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    # the compiled module shares parameters with `model`; the optimizer updates both
    net = torch.compile(model) if args.compile else model

    def train_step(x, y):
        optimizer.zero_grad()
        with torch.autocast("cpu", dtype=amp, enabled=amp is not None):
            logits = model(x)
            loss = F.cross_entropy(logits, y)  # autocast computes losses in float32
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        return loss.detach(), (logits.argmax(dim=1) == y).sum()

    # one graph for forward, backward and the update; the scheduler's lr is read at every call
    step = torch.compile(train_step, fullgraph=True) if args.compile else train_step
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)
    print(f"{args.model.upper()}{' (compiled)' if args.compile else ''}{f' ({args.amp} autocast)' if amp else ''}: "
          f"{sum(p.numel() for p in model.parameters())} parameters, "
          f"{len(train_set)} train / {len(test_set)} test images")

    writer = None
    if args.tensorboard:
        from graphc.utils.tensorboard import SummaryWriter
        writer = SummaryWriter(args.tensorboard)

    acc = 0.0
    for epoch in range(1, args.epochs + 1):
        model.train()
        start, running, right, seen = time.perf_counter(), 0.0, 0, 0
        batches = progress(train_loader, f"epoch {epoch:2d}", args.quiet)
        for i, (x, y) in enumerate(batches, 1):
            loss, correct = step(x, y)
            running += loss.item()
            right, seen = right + int(correct.item()), seen + y.shape[0]
            batches.set_postfix(loss=f"{running / i:.4f}", acc=f"{right / seen:.3f}")
        scheduler.step()
        elapsed = time.perf_counter() - start
        test_loss, acc = evaluate(net, test_loader, amp)
        print(f"epoch {epoch:2d}  train loss {running / len(train_loader):.4f}  test loss {test_loss:.4f}  "
              f"test accuracy {acc * 100:.2f}%  ({elapsed:.2f} s)")
        if writer is not None:
            writer.add_scalars("loss", {"train": running / len(train_loader), "test": test_loss}, epoch)
            writer.add_scalars("accuracy", {"train": right / seen, "test": acc}, epoch)
    if writer is not None:
        writer.close()
    return acc


if __name__ == "__main__":
    main()
