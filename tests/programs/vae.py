"""pytorch/examples vae/main.py: the VAE (encode, reparameterize with randn_like, decode), BCE + KL
loss, Adam; then the example's test pass and sampling under no_grad. Synthetic images in [0, 1];
the hidden and latent sizes are smaller than the example's 400 and 20."""
import numpy as np

import graphc as torch
import graphc.utils.data
from graphc import nn, optim
from graphc.nn import functional as F

DETERMINISTIC = False  # True: no sampling noise (eps = 0), to compare with PyTorch
HIDDEN, LATENT, BATCH = 32, 4, 8  # the example: 400, 20, 128
device = torch.device("cpu")


class VAE(nn.Module):
    def __init__(self):
        super(VAE, self).__init__()

        self.fc1 = nn.Linear(784, HIDDEN)
        self.fc21 = nn.Linear(HIDDEN, LATENT)
        self.fc22 = nn.Linear(HIDDEN, LATENT)
        self.fc3 = nn.Linear(LATENT, HIDDEN)
        self.fc4 = nn.Linear(HIDDEN, 784)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5*logvar)
        eps = torch.zeros_like(std) if DETERMINISTIC else torch.randn_like(std)
        return mu + eps*std

    def decode(self, z):
        h3 = F.relu(self.fc3(z))
        return torch.sigmoid(self.fc4(h3))

    def forward(self, x):
        mu, logvar = self.encode(x.view(-1, 784))
        z = self.reparameterize(mu, logvar)
        return self.decode(z), mu, logvar


# Reconstruction + KL divergence losses summed over all elements and batch
def loss_function(recon_x, x, mu, logvar):
    BCE = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction='sum')
    KLD = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return BCE + KLD


def build():
    return {"model": VAE().to(device)}


def loader(n, seed):
    images = np.random.default_rng(seed).random((n * BATCH, 1, 28, 28), dtype=np.float32)
    dataset = torch.utils.data.TensorDataset(torch.from_numpy(images), torch.zeros(n * BATCH))
    return torch.utils.data.DataLoader(dataset, batch_size=BATCH, shuffle=False)


def train(modules, compiled, steps=3):
    model = modules["model"]
    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    run = torch.compile(model) if compiled else model
    losses = []
    model.train()
    for batch_idx, (data, _) in enumerate(loader(steps, 0)):
        data = data.to(device)
        optimizer.zero_grad()
        recon_batch, mu, logvar = run(data)
        loss = loss_function(recon_batch, data, mu, logvar)
        loss.backward()
        losses.append(loss.item() / len(data))
        optimizer.step()
    model.eval()
    test_loss = 0
    with torch.no_grad():
        for i, (data, _) in enumerate(loader(1, 1)):
            recon_batch, mu, logvar = run(data)
            test_loss += loss_function(recon_batch, data, mu, logvar).item()
            n = min(data.size(0), 8)
            comparison = torch.cat([data[:n], recon_batch.view(BATCH, 1, 28, 28)[:n]])
            assert tuple(comparison.shape) == (2 * n, 1, 28, 28)
        losses.append(test_loss / BATCH)
        sample = torch.from_numpy(np.random.default_rng(2).standard_normal((4, LATENT), dtype=np.float32))
        sample = model.decode(sample).cpu()
        losses.append(sample.sum().item())
    return losses
