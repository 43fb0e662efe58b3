"""MNIST starter: a small fully connected network (the classic tutorial MLP).

The grader imports this file and uses exactly two things from it:

* ``build_model(input_shape, num_classes)`` returns a fresh, untrained ``torch.nn.Module``.
  For MNIST ``input_shape`` is ``(1, 28, 28)`` (pixels are float32 in [0, 1]) and
  ``num_classes`` is 10. ``forward`` gets a batch of shape (N, 1, 28, 28) and must return
  scores of shape (N, 10).
* ``HPARAMS``: how the grader trains your model (epochs, batch size, optimizer, ...).

Optionally you may also define ``train(model, train_set, hparams)`` (or, to draw training
curves in your report, ``train(model, train_set, hparams, report_epoch)``) to replace the
grader's training loop; see the handout (course/handouts/mnist.md).

Check your work locally with ``python starter/mnist.py`` (or ``grader check starter/mnist.py``),
from any folder and under any file name. It grades the file as the course does, on every seed
the assignment names: with several, it prints each seed's test accuracy, then their mean,
which the targets are judged on.
"""

import torch
import torch.nn.functional as F
from torch import nn

# YOUR TURN: tune these. The grader allows at most 10 epochs for MNIST.
# A batch size of 10 is slow; larger batches (64-256) train much faster per epoch.
HPARAMS = {
    "epochs": 3,
    "batch_size": 10,
    "lr": 1e-3,
    "optimizer": "adam",  # any torch.optim class by name: "sgd", "adamw", "radam", ...
    "weight_decay": 0.0,
    "loss": "nll",  # our forward ends in log_softmax, so the loss is the negative log-likelihood
}


class Net(nn.Module):
    def __init__(self, in_features: int, num_classes: int) -> None:
        super().__init__()
        self.flatten = nn.Flatten()  # (N, 1, 28, 28) -> (N, 784)
        # YOUR TURN: change the widths or depth, add nn.Dropout / nn.BatchNorm1d,
        # or replace the MLP with a small CNN (nn.Conv2d + nn.MaxPool2d) for more accuracy.
        self.fc1 = nn.Linear(in_features, 64)
        self.fc2 = nn.Linear(64, 64)
        self.fc3 = nn.Linear(64, 64)
        self.fc4 = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The grader hands forward pixels in [0, 1]. To normalise them as tutorials do with
        # torchvision's transforms.Normalize((0.1307,), (0.3081,)), do it here, so it travels
        # with the model to evaluation:
        #     x = (x - 0.1307) / 0.3081
        x = self.flatten(x)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        x = F.relu(self.fc3(x))
        x = self.fc4(x)
        # log-probabilities: keep "loss": "nll" while this line is here; if you return
        # raw logits instead, switch HPARAMS["loss"] to "cross_entropy".
        return F.log_softmax(x, dim=1)


def build_model(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    in_features = 1
    for dim in input_shape:  # (1, 28, 28) -> 784
        in_features *= dim
    return Net(in_features, num_classes)


# A training loop of your own (a tutorial's, say) replaces the grader's when this file defines
# train(model, train_set, hparams). Give it a fourth parameter named report_epoch and call that
# once per epoch, and your report draws your training curves. Uncomment to try it:
#
# def train(model, train_set, hparams, report_epoch):
#     loader = torch.utils.data.DataLoader(
#         train_set, batch_size=hparams["batch_size"], shuffle=True
#     )
#     optimizer = torch.optim.Adam(model.parameters(), lr=hparams["lr"])
#     for epoch in range(hparams["epochs"]):
#         model.train()
#         loss_sum, correct = 0.0, 0
#         for x, y in loader:
#             optimizer.zero_grad()
#             out = model(x)
#             loss = F.nll_loss(out, y)
#             loss.backward()
#             optimizer.step()
#             loss_sum += loss.item() * len(y)
#             correct += (out.argmax(dim=1) == y).sum().item()
#         report_epoch(loss=loss_sum / len(train_set), accuracy=correct / len(train_set))


if __name__ == "__main__":
    from grader.cli import check_main

    check_main(__file__, "mnist")
