"""Instrumentation: phase timers, language-model pass counters and peak memory, attached for one run.

Counters read the language model's own calls (a forward pre-hook), so TWN and every baseline are
counted the same way:
  - a call with an empty (or no) KV cache is a **prefill**: its rows are inputs processed from scratch;
  - a one-token call on a non-empty cache is a **decode step** (rows = tokens decoded);
  - anything else (the K query tokens, a teacher-forced cached CoT) is a **chunk**.
The language model's own time in each kind of call is recorded as phases `lm_prefill`, `lm_decode`,
`lm_chunk` (the vision tower, LM head, sampling and the Python around them are outside these).
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from contextlib import contextmanager

import torch


def synchronize(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


class Meter:
    """Counts language-model passes and times named phases of a run.

    `phase(name)` is a context manager; `wrap(obj, attribute, name)` times an instance method for the
    life of the meter; `time_module(module, name)` times a module's forward via hooks.
    """

    def __init__(self, device, language_models=()):
        self.device = device
        self.language_models = list(language_models)
        self.phase_s: dict[str, float] = defaultdict(float)
        self.batch_latency_s: list[float] = []
        self.prefill_rows = 0
        self.prefill_tokens = 0  # real (unpadded) tokens of the prefilled rows
        self.prefill_flop_lengths: list[int] = []  # per prefilled row, its real length
        self.decode_rows = 0
        self.decode_steps = 0
        self.decode_context_tokens = 0  # sum over decoded rows of the cache length they attend to
        self.chunk_tokens = 0
        self._undo = []

    # ----- installation ---------------------------------------------------------------------
    def __enter__(self):
        for model in self.language_models:
            self._undo.append(model.register_forward_pre_hook(self._count, with_kwargs=True).remove)
            self._undo.append(model.register_forward_hook(self._timed, with_kwargs=True).remove)
        return self

    def __exit__(self, *exc):
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()
        return False

    def _count(self, module, args, kwargs):
        embeds, ids = kwargs.get("inputs_embeds"), kwargs.get("input_ids")
        tensor = embeds if embeds is not None else ids
        batch, length = tensor.shape[0], tensor.shape[1]
        past = kwargs.get("past_key_values")
        past_length = past.get_seq_length() if past is not None else 0
        mask = kwargs.get("attention_mask")
        synchronize(self.device)
        self._lm_call = ("lm_prefill" if past_length == 0 else "lm_decode" if length == 1 else "lm_chunk",
                         time.perf_counter())
        if past_length == 0:
            self.prefill_rows += batch
            if isinstance(mask, torch.Tensor) and mask.dim() == 2:
                lengths = mask[:, -length:].sum(dim=1).tolist()
            else:
                lengths = [length] * batch
            self.prefill_tokens += int(sum(lengths))
            self.prefill_flop_lengths.extend(int(n) for n in lengths)
        elif length == 1:
            self.decode_rows += batch
            self.decode_steps += 1
            self.decode_context_tokens += batch * past_length
        else:
            self.chunk_tokens += batch * length

    def _timed(self, module, args, kwargs, output):
        """Language-model time by call kind (the same accounting for TWN and every baseline)."""
        synchronize(self.device)
        name, start = self._lm_call
        self.phase_s[name] += time.perf_counter() - start

    @contextmanager
    def phase(self, name: str):
        synchronize(self.device)
        start = time.perf_counter()
        try:
            yield
        finally:
            synchronize(self.device)
            self.phase_s[name] += time.perf_counter() - start

    def wrap(self, obj, attribute: str, name: str, latency: bool = False) -> None:
        """Time `obj.attribute(...)` calls under phase `name` (an instance attribute, removed on exit)."""
        original = getattr(obj, attribute)

        def timed(*args, **kwargs):
            synchronize(self.device)
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                synchronize(self.device)
                elapsed = time.perf_counter() - start
                self.phase_s[name] += elapsed
                if latency:
                    self.batch_latency_s.append(elapsed)

        setattr(obj, attribute, timed)
        self._undo.append(lambda: delattr(obj, attribute))

    def time_module(self, module, name: str) -> None:
        starts = []

        def pre(mod, args):
            synchronize(self.device)
            starts.append(time.perf_counter())

        def post(mod, args, output):
            synchronize(self.device)
            self.phase_s[name] += time.perf_counter() - starts.pop()

        self._undo.append(module.register_forward_pre_hook(pre).remove)
        self._undo.append(module.register_forward_hook(post).remove)


class PeakMemory:
    """Peak memory of a block: CUDA allocator peak on GPU, process peak RSS (VmHWM, reset first) on CPU."""

    def __init__(self, device):
        self.device = torch.device(device)
        self.peak_bytes = 0
        self.start_bytes = 0
        self.method = ""

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.start_bytes = torch.cuda.memory_allocated()
            self.method = "torch.cuda.max_memory_allocated"
        else:
            self.start_bytes = _rss_bytes("VmRSS")
            self.method = "peak RSS (VmHWM after clear_refs)" if _reset_peak_rss() else "peak RSS since process start"
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self.peak_bytes = torch.cuda.max_memory_allocated()
        else:
            self.peak_bytes = _rss_bytes("VmHWM")
        return False


def _rss_bytes(field: str) -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            match = re.search(rf"{field}:\s+(\d+) kB", handle.read())
        return int(match.group(1)) * 1024 if match else 0
    except OSError:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low, high = int(position), min(int(position) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
