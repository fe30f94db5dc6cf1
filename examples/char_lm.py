"""A character-level LSTM language model on a small text shipped with this example.

    python examples/char_lm.py --steps 300

Prints the training loss (and its perplexity) as it learns, then samples text from the model.
Everything is ordinary PyTorch code; only the import differs.
"""
from __future__ import annotations

import argparse
import math
import time

import graphc as torch
import graphc.nn as nn
import graphc.nn.functional as F

# A short text written for this example (no download needed).
TEXT = """\
the compiler reads the graph and the graph tells the compiler what to do. a tensor flows from one
node to the next, and every node knows the shape of what it makes. when the graph is small the
compiler is quick, and when the graph is large the compiler is patient. it folds the constants,
it drops the dead code, it finds the same expression twice and keeps only one. then it fuses the
simple steps into one kernel, plans the memory so that buffers are used again, and writes the
code that runs. the gradient goes backwards through the same graph, node by node, and each node
gives back what it owes to its inputs. the loss goes down, slowly at first and then faster, and
the model learns to say what it has read. it learns that a space follows a word, that a word
follows a space, and that the graph and the compiler like to appear together in a sentence.
"""


class CharLSTM(nn.Module):
    def __init__(self, vocab: int, embed: int = 32, hidden: int = 128, layers: int = 1) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, embed)
        self.lstm = nn.LSTM(embed, hidden, num_layers=layers, batch_first=True)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, x, state=None):
        out, state = self.lstm(self.embed(x), state)
        return self.head(out), state


def batches(data, seq_len: int, batch_size: int, generator):
    """Random windows of the text: inputs and the same windows shifted by one character."""
    starts = torch.randint(0, len(data) - seq_len - 1, (batch_size,), generator=generator)
    x = torch.stack([data[s:s + seq_len] for s in starts.tolist()])
    y = torch.stack([data[s + 1:s + seq_len + 1] for s in starts.tolist()])
    return x, y


def sample(model, stoi, itos, prompt: str, length: int, temperature: float, generator) -> str:
    model.eval()
    out = prompt
    with torch.no_grad():
        x = torch.tensor([[stoi[c] for c in prompt]])
        logits, state = model(x)
        for _ in range(length):
            probs = F.softmax(logits[0, -1] / temperature, dim=-1)
            nxt = torch.multinomial(probs, 1, generator=generator).item()
            out += itos[nxt]
            logits, state = model(torch.tensor([[nxt]]), state)
    model.train()
    return out


def main(argv=None) -> float:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--seq-len", type=int, default=48)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sample", type=int, default=200, help="characters to sample at the end")
    args = p.parse_args(argv)

    torch.manual_seed(args.seed)
    chars = sorted(set(TEXT))
    stoi = {c: i for i, c in enumerate(chars)}
    itos = {i: c for c, i in stoi.items()}
    data = torch.tensor([stoi[c] for c in TEXT])
    model = CharLSTM(len(chars))
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    gen = torch.Generator().manual_seed(args.seed)
    print(f"text: {len(TEXT)} characters, vocabulary {len(chars)}; model: "
          f"{sum(p.numel() for p in model.parameters())} parameters")

    start, running = time.perf_counter(), None
    for step in range(1, args.steps + 1):
        x, y = batches(data, args.seq_len, args.batch_size, gen)
        logits, _ = model(x)
        loss = F.cross_entropy(logits.reshape(-1, len(chars)), y.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        running = loss.item() if running is None else 0.9 * running + 0.1 * loss.item()
        if step % 50 == 0 or step == args.steps:
            print(f"step {step:4d}  loss {running:.3f}  perplexity {math.exp(running):6.2f}  "
                  f"({time.perf_counter() - start:.1f} s)", flush=True)
    if args.sample:
        print("sample:", sample(model, stoi, itos, "the ", args.sample, 0.8, gen))
    return running


if __name__ == "__main__":
    main()
