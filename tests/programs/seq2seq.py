"""PyTorch's tutorial "NLP From Scratch: Translation with a Sequence to Sequence Network and
Attention" (seq2seq_translation_tutorial.py): EncoderRNN (Embedding, GRU with batch_first),
BahdanauAttention, AttnDecoderRNN with teacher forcing, NLLLoss, one Adam per network, and greedy
decoding (topk) for evaluation. Synthetic sentence pairs of token ids; hidden size, vocabularies
and MAX_LENGTH are smaller than the tutorial's (128, ~4500/2900 words, 10)."""
import numpy as np

import graphc as torch
import graphc.nn as nn
import graphc.nn.functional as F
from graphc import optim

DETERMINISTIC = False  # True: no dropout, to compare with PyTorch
device = torch.device("cpu")
SOS_token, EOS_token = 0, 1
MAX_LENGTH, HIDDEN, IN_WORDS, OUT_WORDS, BATCH = 3, 12, 15, 13, 3
DROPOUT = 0.1


class EncoderRNN(nn.Module):
    def __init__(self, input_size, hidden_size, dropout_p=0.1):
        super(EncoderRNN, self).__init__()
        self.hidden_size = hidden_size

        self.embedding = nn.Embedding(input_size, hidden_size)
        self.gru = nn.GRU(hidden_size, hidden_size, batch_first=True)
        self.dropout = nn.Dropout(dropout_p)

    def forward(self, input):
        embedded = self.dropout(self.embedding(input))
        output, hidden = self.gru(embedded)
        return output, hidden


class BahdanauAttention(nn.Module):
    def __init__(self, hidden_size):
        super(BahdanauAttention, self).__init__()
        self.Wa = nn.Linear(hidden_size, hidden_size)
        self.Ua = nn.Linear(hidden_size, hidden_size)
        self.Va = nn.Linear(hidden_size, 1)

    def forward(self, query, keys):
        scores = self.Va(torch.tanh(self.Wa(query) + self.Ua(keys)))
        scores = scores.squeeze(2).unsqueeze(1)

        weights = F.softmax(scores, dim=-1)
        context = torch.bmm(weights, keys)

        return context, weights


class AttnDecoderRNN(nn.Module):
    def __init__(self, hidden_size, output_size, dropout_p=0.1):
        super(AttnDecoderRNN, self).__init__()
        self.embedding = nn.Embedding(output_size, hidden_size)
        self.attention = BahdanauAttention(hidden_size)
        self.gru = nn.GRU(2 * hidden_size, hidden_size, batch_first=True)
        self.out = nn.Linear(hidden_size, output_size)
        self.dropout = nn.Dropout(dropout_p)

    def forward(self, encoder_outputs, encoder_hidden, target_tensor=None):
        batch_size = encoder_outputs.size(0)
        decoder_input = torch.empty(batch_size, 1, dtype=torch.long, device=device).fill_(SOS_token)
        decoder_hidden = encoder_hidden
        decoder_outputs = []
        attentions = []

        for i in range(MAX_LENGTH):
            decoder_output, decoder_hidden, attn_weights = self.forward_step(
                decoder_input, decoder_hidden, encoder_outputs
            )
            decoder_outputs.append(decoder_output)
            attentions.append(attn_weights)

            if target_tensor is not None:
                # Teacher forcing: Feed the target as the next input
                decoder_input = target_tensor[:, i].unsqueeze(1) # Teacher forcing
            else:
                # Without teacher forcing: use its own predictions as the next input
                _, topi = decoder_output.topk(1)
                decoder_input = topi.squeeze(-1).detach()  # detach from history as input

        decoder_outputs = torch.cat(decoder_outputs, dim=1)
        decoder_outputs = F.log_softmax(decoder_outputs, dim=-1)
        attentions = torch.cat(attentions, dim=1)

        return decoder_outputs, decoder_hidden, attentions

    def forward_step(self, input, hidden, encoder_outputs):
        embedded =  self.dropout(self.embedding(input))

        query = hidden.permute(1, 0, 2)
        context, attn_weights = self.attention(query, encoder_outputs)
        input_gru = torch.cat((embedded, context), dim=2)

        output, hidden = self.gru(input_gru, hidden)
        output = self.out(output)

        return output, hidden, attn_weights


def build():
    p = 0.0 if DETERMINISTIC else DROPOUT
    return {"encoder": EncoderRNN(IN_WORDS, HIDDEN, p).to(device),
            "decoder": AttnDecoderRNN(HIDDEN, OUT_WORDS, p).to(device)}


def pairs(n, seed):
    """Sentence pairs as the tutorial's get_dataloader pads them: ids, then EOS, then zeros."""
    rng = np.random.default_rng(seed)
    inputs = np.zeros((n, MAX_LENGTH), dtype=np.int64)
    targets = np.zeros((n, MAX_LENGTH), dtype=np.int64)
    for k in range(n):
        li, lt = rng.integers(1, MAX_LENGTH, size=2)
        inputs[k, :li], inputs[k, li] = rng.integers(2, IN_WORDS, li), EOS_token
        targets[k, :lt], targets[k, lt] = rng.integers(2, OUT_WORDS, lt), EOS_token
    return torch.from_numpy(inputs), torch.from_numpy(targets)


def train(modules, compiled, steps=2):
    encoder, decoder = modules["encoder"], modules["decoder"]
    enc, dec = (torch.compile(encoder), torch.compile(decoder)) if compiled else (encoder, decoder)
    encoder_optimizer = optim.Adam(encoder.parameters(), lr=0.001)
    decoder_optimizer = optim.Adam(decoder.parameters(), lr=0.001)
    criterion = nn.NLLLoss()
    input_ids, target_ids = pairs(steps * BATCH, 0)
    train_data = torch.utils.data.TensorDataset(input_ids, target_ids)
    train_dataloader = torch.utils.data.DataLoader(train_data, batch_size=BATCH)
    losses = []
    # train_epoch
    for data in train_dataloader:
        input_tensor, target_tensor = data

        encoder_optimizer.zero_grad()
        decoder_optimizer.zero_grad()

        encoder_outputs, encoder_hidden = enc(input_tensor)
        decoder_outputs, _, _ = dec(encoder_outputs, encoder_hidden, target_tensor)

        loss = criterion(
            decoder_outputs.view(-1, decoder_outputs.size(-1)),
            target_tensor.view(-1)
        )
        loss.backward()

        encoder_optimizer.step()
        decoder_optimizer.step()
        losses.append(loss.item())
    # evaluate: greedy decoding
    encoder.eval()
    decoder.eval()
    with torch.no_grad():
        input_tensor, _ = pairs(2, 1)
        encoder_outputs, encoder_hidden = enc(input_tensor)
        decoder_outputs, decoder_hidden, decoder_attn = dec(encoder_outputs, encoder_hidden)
        _, topi = decoder_outputs.topk(1)
        decoded_ids = topi.squeeze()
        losses += [float(v) for v in decoded_ids.view(-1).tolist()]
        losses.append(decoder_attn.sum().item())
    return losses
