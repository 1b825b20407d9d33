"""Scripts a small decoder-only LM of torch.nn modules (layers share TorchScript types) and writes calibration and held-out token batches with torch.save."""
import math
import sys
import warnings

import torch
from torch import nn

HIDDEN, VOCAB, LAYERS, SEQ = 128, 512, 4, 32


class Attention(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.q_proj = nn.Linear(d, d, bias=False)
        self.k_proj = nn.Linear(d, d, bias=False)
        self.v_proj = nn.Linear(d, d, bias=False)
        self.o_proj = nn.Linear(d, d, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.q_proj(x), self.k_proj(x), self.v_proj(x)
        a = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.size(-1)), dim=-1)
        return self.o_proj(a @ v)


class MLP(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(d, 4 * d)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(4 * d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class DecoderLayer(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.input_layernorm = nn.LayerNorm(d)
        self.self_attn = Attention(d)
        self.post_attention_layernorm = nn.LayerNorm(d)
        self.mlp = MLP(d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x))
        return x + self.mlp(self.post_attention_layernorm(x))


class TinyLM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(VOCAB, HIDDEN)
        self.layers = nn.ModuleList([DecoderLayer(HIDDEN) for _ in range(LAYERS)])
        self.norm = nn.LayerNorm(HIDDEN)
        self.lm_head = nn.Linear(HIDDEN, VOCAB, bias=False)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        x = self.embed_tokens(input_ids)
        for layer in self.layers:
            x = layer(x)
        return self.lm_head(self.norm(x))


def main(model_path: str, calib_path: str, heldout_path: str) -> int:
    torch.manual_seed(0)
    model = TinyLM().eval()
    with torch.no_grad():
        # a few outlier channels, as in real LLM activations (LLM.int8): what SmoothQuant is for
        for layer in model.layers:
            for norm in (layer.input_layernorm, layer.post_attention_layernorm):
                norm.weight[[3, 50, 97]] = 12.0
    warnings.filterwarnings("ignore", message=".*was found in ScriptModule constants")
    torch.jit.script(model).save(model_path)
    g = torch.Generator().manual_seed(1)
    torch.save([torch.randint(0, VOCAB, (2, SEQ), generator=g) for _ in range(8)], calib_path)
    torch.save([torch.randint(0, VOCAB, (2, SEQ), generator=g) for _ in range(4)], heldout_path)
    print(f"wrote '{model_path}', '{calib_path}' and '{heldout_path}' (torch {torch.__version__})")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
