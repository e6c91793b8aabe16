"""`toploc_generate`: greedy generation from a small seeded transformer built in code, committed
TOPLOC-style: the top-k (indices and values) of the last hidden state every `commit_every`
generated tokens (and after the last one), so a verifier checks it with one prefill (`verify`).

Params: ``vocab`` (2..4096), ``d_model`` (8..512), ``layers`` (1..4), ``heads`` (1..8, divides
d_model), ``prompt_len`` (1..256), ``new_tokens`` (1..256), ``commit_every`` (1..64, default 8),
``topk`` (1..64 and <= d_model, default 8). Weights and the prompt come from the seed (fp32).
Output: ``tokens`` (int64, new_tokens), ``commit_pos`` (int64, positions committed),
``topk_idx`` (int64, C x k), ``topk_val`` (fp32, C x k).

FLOPs: every step re-runs the full prefix (no KV cache): per step of length T,
``layers * (24 T d^2 + 4 T^2 d) + 2 V d``; cap 10^13.
Compare: tokens, positions and indices exactly; values ``max|a-b| <= 1e-3 * max|b|``.
`verify(spec, claimed)`: one prefill over prompt + claimed tokens; each claimed token must be
the argmax at its position or within ``1e-3 * max|logit|`` of it (a near-tie another float
order may flip), and each commitment's top-k must match the recomputed hidden state.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

from offchain.workloads.base import (
    CompareResult,
    Kind,
    Output,
    SpecError,
    check_flops,
    check_inputs,
    check_int,
    check_keys,
    compare_outputs,
    deterministic,
    generator,
    spec_hash,
)

NAME = "toploc_generate"
MAX_FLOPS = 10**13
VAL_RTOL = 1e-3
LOGIT_TOL = 1e-3


def _params(spec: dict) -> dict:
    p = spec.get("params", {})
    check_keys(p, {"vocab", "d_model", "layers", "heads", "prompt_len", "new_tokens", "commit_every", "topk"})
    q = {
        "vocab": check_int(p, "vocab", 2, 4096),
        "d_model": check_int(p, "d_model", 8, 512),
        "layers": check_int(p, "layers", 1, 4),
        "heads": check_int(p, "heads", 1, 8),
        "prompt_len": check_int(p, "prompt_len", 1, 256),
        "new_tokens": check_int(p, "new_tokens", 1, 256),
        "commit_every": check_int(p, "commit_every", 1, 64, 8),
        "topk": check_int(p, "topk", 1, 64, 8),
    }
    if q["d_model"] % q["heads"]:
        raise SpecError(f"params.heads = {q['heads']} must divide params.d_model = {q['d_model']}")
    if q["topk"] > q["d_model"]:
        raise SpecError("params.topk must be <= params.d_model")
    return q


def flops(spec: dict) -> int:
    q = _params(spec)
    d, total = q["d_model"], 0
    for t in range(q["prompt_len"], q["prompt_len"] + q["new_tokens"]):
        total += q["layers"] * (24 * t * d * d + 4 * t * t * d) + 2 * q["vocab"] * d
    return total


def verify_flops(spec: dict) -> int:
    """FLOPs of `verify`: one prefill over prompt + generated tokens (minus the last) and the
    logits of the generated positions; what an auditor spends instead of `flops(spec)`."""
    q = _params(spec)
    d, t = q["d_model"], q["prompt_len"] + q["new_tokens"] - 1
    return q["layers"] * (24 * t * d * d + 4 * t * t * d) + 2 * q["vocab"] * d * q["new_tokens"]


def validate(spec: dict, blobs: Mapping[str, bytes] | None = None) -> None:
    _params(spec)
    check_inputs(spec, (), blobs)
    check_flops(flops(spec), MAX_FLOPS, NAME)


class _Model:
    def __init__(self, q: dict, seed: int, device: torch.device):
        g, d = generator(seed), q["d_model"]
        self.q, self.h = q, q["heads"]
        n_pos = q["prompt_len"] + q["new_tokens"]

        def r(*shape, scale):
            return (torch.randn(*shape, generator=g) * scale).to(device)

        self.emb = r(q["vocab"], d, scale=1.0)
        self.pos = r(n_pos, d, scale=0.1)
        self.blocks = [
            (
                r(d, 3 * d, scale=d**-0.5),
                r(d, d, scale=d**-0.5),
                r(d, 4 * d, scale=d**-0.5),
                r(4 * d, d, scale=0.5 * d**-0.5),
            )
            for _ in range(q["layers"])
        ]
        self.prompt = torch.randint(0, q["vocab"], (q["prompt_len"],), generator=generator(seed, 1)).to(device)

    def hidden(self, tokens: torch.Tensor) -> torch.Tensor:
        t, d = tokens.shape[0], self.q["d_model"]
        x = self.emb[tokens] + self.pos[:t]
        mask = torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
        for wqkv, wo, w1, w2 in self.blocks:
            qkv = torch.nn.functional.layer_norm(x, (d,)) @ wqkv
            qh, kh, vh = (z.reshape(t, self.h, d // self.h).transpose(0, 1) for z in qkv.split(d, dim=1))
            att = (qh @ kh.transpose(1, 2)) / math.sqrt(d // self.h)
            att = att.masked_fill(~mask, float("-inf")).softmax(-1)
            x = x + (att @ vh).transpose(0, 1).reshape(t, d) @ wo
            x = x + torch.nn.functional.gelu(torch.nn.functional.layer_norm(x, (d,)) @ w1) @ w2
        return torch.nn.functional.layer_norm(x, (d,))

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        return h @ self.emb.T


def _commit_steps(q: dict) -> list[int]:
    n, every = q["new_tokens"], q["commit_every"]
    return sorted({i for i in range(1, n + 1) if i % every == 0} | {n})


def execute(spec: dict, device: torch.device, blobs: Mapping[str, bytes] | None = None) -> Output:
    return generate(spec, device)


def generate(spec: dict, device: torch.device | str, weights_dtype: torch.dtype | None = None) -> Output:
    """Greedy generation with TOPLOC commits. `weights_dtype` casts the model's weights first
    (None: the spec's own precision); the provider agent's `cheaper-model` cheat uses bf16."""
    q = _params(spec)
    device = torch.device(device)
    commits = set(_commit_steps(q))
    with deterministic(), torch.no_grad():
        m = _Model(q, spec["seed"], device)
        if weights_dtype is not None:
            m.emb, m.pos = m.emb.to(weights_dtype), m.pos.to(weights_dtype)
            m.blocks = [tuple(w.to(weights_dtype) for w in blk) for blk in m.blocks]
        seq, idx, val, pos = m.prompt, [], [], []
        for i in range(1, q["new_tokens"] + 1):
            h = m.hidden(seq)[-1]
            nxt = m.logits(h).argmax().reshape(1)
            seq = torch.cat([seq, nxt])
            if i in commits:
                v, ix = h.topk(q["topk"])
                idx.append(ix)
                val.append(v)
                pos.append(seq.shape[0] - 2)
        tensors = {
            "tokens": seq[q["prompt_len"] :].cpu(),
            "commit_pos": torch.tensor(pos, dtype=torch.int64),
            "topk_idx": torch.stack(idx).cpu(),
            "topk_val": torch.stack(val).to(torch.float32).cpu(),
        }
    return Output(NAME, tensors, {"spec": spec_hash(spec)})


def compare(a: Output, b: Output) -> CompareResult:
    return compare_outputs(a, b, {"topk_val": (VAL_RTOL, "scale")})


def verify(spec: dict, claimed: Output, device: torch.device | str = "cpu") -> CompareResult:
    """Check a claimed generation with one prefill (no re-generation)."""
    q = _params(spec)
    if claimed.kind != NAME or claimed.meta != {"spec": spec_hash(spec)}:
        return CompareResult(False, "output is not for this spec", math.inf, math.inf)
    tok = claimed.tensors.get("tokens")
    if tok is None or tok.dtype != torch.int64 or tuple(tok.shape) != (q["new_tokens"],):
        return CompareResult(False, "tokens missing or of the wrong shape/dtype", math.inf, math.inf)
    if int(tok.min()) < 0 or int(tok.max()) >= q["vocab"]:
        return CompareResult(False, "token id out of the vocabulary", math.inf, math.inf)
    device = torch.device(device)
    with deterministic(), torch.no_grad():
        m = _Model(q, spec["seed"], device)
        seq = torch.cat([m.prompt, tok.to(device)])
        h = m.hidden(seq[:-1]).cpu()
        logits = m.logits(h[q["prompt_len"] - 1 :].to(device)).cpu()
    chosen = logits.gather(1, tok.reshape(-1, 1)).squeeze(1)
    gap = logits.max(1).values - chosen
    tol = LOGIT_TOL * logits.abs().max(1).values
    bad = (gap > tol).nonzero()
    if bad.numel():
        i = int(bad[0])
        return CompareResult(False, f"token {i} is not the greedy choice (logit gap {float(gap[i]):.3g})", 0.0, 0.0)
    pos = torch.tensor([q["prompt_len"] - 1 + s - 1 for s in _commit_steps(q)], dtype=torch.int64)
    ref = {"commit_pos": pos}
    ref["topk_val"], ref["topk_idx"] = h[pos].topk(q["topk"], dim=1)
    want = Output(NAME, ref | {"tokens": tok}, claimed.meta)
    return compare(claimed, want)


KIND = Kind(NAME, validate, flops, execute, compare, __doc__ or "")
