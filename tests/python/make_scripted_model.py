"""Scripts a PyTorch module (a TransformerEncoderLayer and an MLP of nn.Linear) with torch.jit.script and saves it for modkit."""
import sys
import warnings

import torch
from torch import nn


class EncoderWithMLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.TransformerEncoderLayer(d_model=64, nhead=4, dim_feedforward=128, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64))
        self.head = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.encoder(x)
        return self.head(x + self.mlp(x))


def main(path: str) -> int:
    torch.manual_seed(0)
    model = EncoderWithMLP().eval()
    # torch 1.13 warns that TransformerEncoderLayer lists batch_first among its constants: harmless.
    warnings.filterwarnings("ignore", message=".*was found in ScriptModule constants")
    torch.jit.script(model).save(path)
    print(f"wrote '{path}' (torch {torch.__version__})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
