"""Small real models around an RNN, shared by the LSTM and GRU quantizer tests."""
from __future__ import annotations

from torch import nn


class Tagger(nn.Module):
    """Embedding -> RNN (nn.LSTM or nn.GRU) -> Linear on the last step, with the RNN at the
    attribute path `encoder.rnn` (graph prefix `EncoderRnn`)."""

    def __init__(self, hidden=100, layers=2, bidirectional=True, batch_first=True, bias=True, rnn=nn.LSTM, embed=24):
        super().__init__()
        self.emb = nn.Embedding(50, embed)
        self.encoder = nn.Module()
        self.encoder.rnn = rnn(embed, hidden, num_layers=layers, bidirectional=bidirectional,
                               batch_first=batch_first, bias=bias)
        self.head = nn.Linear(hidden * (2 if bidirectional else 1), 3)

    def forward(self, tokens):
        x = self.emb(tokens)
        if not self.encoder.rnn.batch_first:
            x = x.transpose(0, 1)
        y, _ = self.encoder.rnn(x)
        if not self.encoder.rnn.batch_first:
            y = y.transpose(0, 1)
        return self.head(y[:, -1])
