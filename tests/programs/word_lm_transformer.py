"""pytorch/examples word_language_model (model.py's TransformerModel and PositionalEncoding,
main.py's training loop) with the Transformer: the model caches its causal ``src_mask`` on
``self`` in ``forward`` (compiled, that attribute is written back after each call), clip_grad_norm_,
the manual SGD step on ``p.data``, and evaluate() under no_grad. A synthetic corpus of token ids;
the sizes are much smaller than the example's (emsize 200, nhead 2, nhid 200, nlayers 2, bptt 35)."""
import math

import numpy as np

import graphc as torch
import graphc.nn as nn
import graphc.nn.functional as F

DETERMINISTIC = False  # True: no dropout, to compare with PyTorch
device = torch.device("cpu")
NTOKENS, EMSIZE, NHEAD, NHID, NLAYERS, BPTT, BATCH = 40, 8, 2, 16, 1, 4, 3
CLIP, LR = 0.25, 20


class PositionalEncoding(nn.Module):
    r"""Inject some information about the relative or absolute position of the tokens in the sequence.
        The positional encodings have the same dimension as the embeddings, so that the two can be summed.
        Here, we use sine and cosine functions of different frequencies.
    """

    def __init__(self, d_model, dropout=0.1, max_len=5000):
        super(PositionalEncoding, self).__init__()
        self.dropout = nn.Dropout(p=dropout)

        pe = torch.zeros(max_len, d_model)
        position = torch.arange(0, max_len, dtype=torch.float).unsqueeze(1)
        div_term = torch.exp(torch.arange(0, d_model, 2).float() * (-math.log(10000.0) / d_model))
        pe[:, 0::2] = torch.sin(position * div_term)
        pe[:, 1::2] = torch.cos(position * div_term)
        pe = pe.unsqueeze(0).transpose(0, 1)
        self.register_buffer('pe', pe)

    def forward(self, x):
        x = x + self.pe[:x.size(0), :]
        return self.dropout(x)


class TransformerModel(nn.Transformer):
    """Container module with an encoder, a recurrent or transformer module, and a decoder."""

    def __init__(self, ntoken, ninp, nhead, nhid, nlayers, dropout=0.5):
        super(TransformerModel, self).__init__(d_model=ninp, nhead=nhead, dim_feedforward=nhid,
                                               num_encoder_layers=nlayers, dropout=dropout)
        self.model_type = 'Transformer'
        self.src_mask = None
        self.pos_encoder = PositionalEncoding(ninp, dropout)

        self.input_emb = nn.Embedding(ntoken, ninp)
        self.ninp = ninp
        self.decoder = nn.Linear(ninp, ntoken)

        self.init_weights()

    def _generate_square_subsequent_mask(self, sz):
        return torch.log(torch.tril(torch.ones(sz,sz)))

    def init_weights(self):
        initrange = 0.1
        nn.init.uniform_(self.input_emb.weight, -initrange, initrange)
        nn.init.zeros_(self.decoder.bias)
        nn.init.uniform_(self.decoder.weight, -initrange, initrange)

    def forward(self, src, has_mask=True):
        if has_mask:
            device = src.device
            if self.src_mask is None or self.src_mask.size(0) != len(src):
                mask = self._generate_square_subsequent_mask(len(src)).to(device)
                self.src_mask = mask
        else:
            self.src_mask = None

        src = self.input_emb(src) * math.sqrt(self.ninp)
        src = self.pos_encoder(src)
        output = self.encoder(src, mask=self.src_mask)
        output = self.decoder(output)
        return F.log_softmax(output, dim=-1)


def batchify(data, bsz):
    # Work out how cleanly we can divide the dataset into bsz parts.
    nbatch = data.size(0) // bsz
    # Trim off any extra elements that wouldn't cleanly fit (remainders).
    data = data.narrow(0, 0, nbatch * bsz)
    # Evenly divide the data across the bsz batches.
    data = data.view(bsz, -1).t().contiguous()
    return data.to(device)


def get_batch(source, i):
    seq_len = min(BPTT, len(source) - 1 - i)
    data = source[i:i+seq_len]
    target = source[i+1:i+1+seq_len].view(-1)
    return data, target


def corpus(n, seed):
    return torch.from_numpy(np.random.default_rng(seed).integers(0, NTOKENS, n))


def build():
    return {"model": TransformerModel(NTOKENS, EMSIZE, NHEAD, NHID, NLAYERS, 0.0 if DETERMINISTIC else 0.2).to(device)}


def train(modules, compiled, steps=3):
    model = modules["model"]
    run = torch.compile(model) if compiled else model
    criterion = nn.NLLLoss()
    train_data = batchify(corpus(BATCH * BPTT * steps + BATCH, 0), BATCH)
    val_data = batchify(corpus(14, 1), 2)  # chunks of 4 and 2 tokens (the Transformer rebuilds its mask)
    losses = []
    # train()
    model.train()
    for batch, i in enumerate(range(0, train_data.size(0) - 1, BPTT)):
        data, targets = get_batch(train_data, i)
        model.zero_grad()
        output = run(data)
        output = output.view(-1, NTOKENS)
        loss = criterion(output, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        for p in model.parameters():
            p.data.add_(p.grad, alpha=-LR)
        losses.append(loss.item())
    # evaluate(val_data)
    model.eval()
    total_loss = 0.
    with torch.no_grad():
        for i in range(0, val_data.size(0) - 1, BPTT):
            data, targets = get_batch(val_data, i)
            output = run(data)
            output = output.view(-1, NTOKENS)
            total_loss += len(data) * criterion(output, targets).item()
    losses.append(math.exp(total_loss / (len(val_data) - 1)))  # validation perplexity
    return losses
