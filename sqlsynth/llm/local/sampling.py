"""Logits processors (plain callables with the transformers LogitsProcessor signature)."""

from __future__ import annotations

from .options import GenerationOptions


class RepetitionPenalty:
    """transformers' repetition penalty, but blind to padding (so batches don't change answers)."""

    def __init__(self, penalty: float, pad_spans: list[tuple[int, int]], rows_per_input: int):
        self.penalty, self.pad_spans, self.rows_per_input = penalty, pad_spans, rows_per_input

    def __call__(self, input_ids, scores):
        import torch

        for row in range(scores.shape[0]):
            start, end = self.pad_spans[row // self.rows_per_input]
            ids = torch.cat([input_ids[row, :start], input_ids[row, end:]])
            picked = scores[row, ids]
            scores[row, ids] = picked.where(picked < 0, picked / self.penalty).where(
                picked >= 0, picked * self.penalty)
        return scores


class RowSampler:
    """Temperature / top-k / top-p sampling with one generator per row; leaves only the drawn token.

    generate() then runs greedy and takes that token, so each row's draws depend on its own seed
    only, never on the batch it landed in.
    """

    def __init__(self, options: GenerationOptions, seeds: list[int]):
        self.temperature = options.temperature if options.temperature is not None else 1.0
        self.top_k, self.top_p = options.top_k, options.top_p
        self.seeds = seeds
        self.generators = None

    def __call__(self, input_ids, scores):
        import torch

        if self.generators is None:
            self.generators = [torch.Generator(device=scores.device).manual_seed(s) for s in self.seeds]
        probs = torch.softmax(self._filtered(scores.float() / self.temperature), dim=-1)
        # Inverse-CDF draw: one uniform per row from the row's own generator (multinomial would
        # draw per row over the whole vocabulary, ~10x slower on CPU).
        uniforms = torch.cat([torch.rand(1, generator=g, device=scores.device) for g in self.generators])
        cdf = probs.cumsum(dim=-1)
        target = (uniforms[:, None] * cdf[:, -1:]).clamp_min(1e-30)  # never a zero-probability token
        picked = torch.searchsorted(cdf, target).squeeze(1).clamp_(max=scores.shape[-1] - 1)
        broken = ~(torch.isfinite(cdf[:, -1]) & (cdf[:, -1] > 0))
        picked = torch.where(broken, scores.argmax(dim=-1), picked)  # nothing to sample from
        out = torch.full_like(scores, float("-inf"))
        out.scatter_(1, picked[:, None], 0.0)
        return out

    def _filtered(self, logits):
        import torch

        if self.top_k and self.top_k < logits.shape[-1]:
            kth = torch.topk(logits, self.top_k, dim=-1).values[:, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        if self.top_p < 1.0:
            ordered, order = torch.sort(logits, descending=True, dim=-1)
            cumulative = torch.softmax(ordered, dim=-1).cumsum(dim=-1)
            drop = cumulative - torch.softmax(ordered, dim=-1) > self.top_p  # keep the top token always
            logits = logits.scatter(1, order, ordered.masked_fill(drop, float("-inf")))
        return logits
