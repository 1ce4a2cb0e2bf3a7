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


class LstmGruClassifier(nn.Module):
    """An LSTM and a bidirectional GRU on top of it, then a Linear on the last step: a model
    whose quantizer holds both cell kinds (graphs `Lstm_...` and `Gru_...`)."""

    def __init__(self, features=12, classes=9):
        super().__init__()
        self.lstm = nn.LSTM(features, 16, batch_first=True)
        self.gru = nn.GRU(16, 12, batch_first=True, bidirectional=True)
        self.head = nn.Linear(24, classes)

    def forward(self, x):
        return self.head(self.gru(self.lstm(x)[0])[0][:, -1])


class GruClassifier(nn.Module):
    """The GRU example's architecture (examples/gru/pytorch/gru_model.py): GRU(12, 32) + Linear."""

    def __init__(self, features=12, hidden=32, classes=9):
        super().__init__()
        self.gru = nn.GRU(features, hidden, batch_first=True)
        self.classifier = nn.Linear(hidden, classes)

    def forward(self, x):
        return self.classifier(self.gru(x)[0][:, -1, :])
