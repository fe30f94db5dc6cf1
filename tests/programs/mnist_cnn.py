"""pytorch/examples mnist/main.py: the CNN, Adadelta with StepLR, nll_loss on log_softmax.
Synthetic images (normalized as the example's transform does). The layer sizes are the example's
by default (28x28 images, 32 and 64 channels, 128 hidden units); the test uses smaller ones."""
import numpy as np

import graphc as torch
import graphc.nn as nn
import graphc.nn.functional as F
import graphc.optim as optim
from graphc.optim.lr_scheduler import StepLR

DETERMINISTIC = False  # True: no dropout (to compare with PyTorch, whose random streams differ)


SIZE, C1, C2, HIDDEN, BATCH = 12, 4, 8, 16, 4  # the example: 28, 32, 64, 128, 64


class Net(nn.Module):
    def __init__(self):
        super(Net, self).__init__()
        self.conv1 = nn.Conv2d(1, C1, 3, 1)
        self.conv2 = nn.Conv2d(C1, C2, 3, 1)
        self.dropout1 = nn.Dropout(0.0 if DETERMINISTIC else 0.25)
        self.dropout2 = nn.Dropout(0.0 if DETERMINISTIC else 0.5)
        self.fc1 = nn.Linear(C2 * ((SIZE - 4) // 2) ** 2, HIDDEN)  # 9216 -> 128 in the example
        self.fc2 = nn.Linear(HIDDEN, 10)

    def forward(self, x):
        x = self.conv1(x)
        x = F.relu(x)
        x = self.conv2(x)
        x = F.relu(x)
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = self.fc1(x)
        x = F.relu(x)
        x = self.dropout2(x)
        x = self.fc2(x)
        output = F.log_softmax(x, dim=1)
        return output


def build():
    return {"model": Net()}


def batches(n, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        images = (rng.random((BATCH, 1, SIZE, SIZE), dtype=np.float32) - 0.1307) / 0.3081
        yield torch.from_numpy(images), torch.from_numpy(rng.integers(0, 10, BATCH))


def train(modules, compiled, steps=2):
    model = modules["model"]
    device = torch.device("cpu")
    optimizer = optim.Adadelta(model.parameters(), lr=1.0)
    scheduler = StepLR(optimizer, step_size=1, gamma=0.7)
    run = torch.compile(model) if compiled else model
    model.train()
    losses = []
    for epoch in range(1, 3):
        for data, target in batches(steps, seed=epoch):
            data, target = data.to(device), target.to(device)
            optimizer.zero_grad()
            output = run(data)
            loss = F.nll_loss(output, target)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        scheduler.step()
    model.eval()
    with torch.no_grad():  # the example's test(): summed loss and accuracy
        data, target = next(batches(1, seed=99))
        output = run(data)
        losses.append(F.nll_loss(output, target, reduction='sum').item())
        pred = output.argmax(dim=1, keepdim=True)
        losses.append(float(pred.eq(target.view_as(pred)).sum().item()))
    return losses
