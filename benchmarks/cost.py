"""TWN cost benchmark: the encode pipeline per think mode, side by side with the ways others embed.

    python -m benchmarks.cost                                  # CPU: mid-size Qwen3-VL-shaped backbone, minutes
    python -m benchmarks.cost --config qwen3-vl-4b-gpu --device cuda   # GPU: the real 4B shapes, bf16, SDPA
    python -m benchmarks.cost --config smoke --results-dir /tmp/b --markdown /tmp/b/BENCHMARKS.md   # seconds (CI)

One run measures, on a fixed mixed workload (texts, images, text+image; fixed seeds) with routing and
CoT length forced (`think_mask`; `min_new_tokens = max_new_tokens`):
  - TWN per mode: never, auto at each think rate, always, always with a warm CoT cache;
  - baselines (a) bare-backbone floor, (b) naive dual-adapter pipeline, (c) `generate()` per batch;
  - sweeps over batch size, context length and CoT length;
  - equivalence checks (cache on/off, batched vs one at a time);
and writes `benchmarks/results/<config>-<device>.json`, then re-renders `BENCHMARKS.md` from every
results file (goals marked met / not met from the measured numbers; see `benchmarks/report.py`).
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import logging
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from benchmarks import baselines
from benchmarks.meter import Meter, PeakMemory, percentile, synchronize
from benchmarks.models import build_models, load_config
from benchmarks.report import evaluate_goals, write_markdown
from benchmarks.workload import context_workload, mixed_workload

logger = logging.getLogger("benchmarks.cost")

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "benchmarks" / "results"

# Dense bf16 tensor-core peak and HBM bandwidth, by substring of torch.cuda.get_device_name().
DEVICE_PEAKS = {
    "H100 PCIe": (756e12, 2.0e12),
    "H100": (989e12, 3.35e12),  # SXM (HBM3)
    "H200": (989e12, 4.8e12),
    "A100": (312e12, 2.0e12),
}


# ----- environment ------------------------------------------------------------------------------
def _git(*args) -> str | None:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10,
                              check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def code_fingerprint() -> str:
    """SHA-256 of the code that produced the numbers (benchmarks/*.py, modeling/*.py)."""
    digest = hashlib.sha256()
    for path in sorted([*ROOT.glob("benchmarks/*.py"), *ROOT.glob("modeling/*.py")]):
        digest.update(path.relative_to(ROOT).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def environment(device: str, peak_flops: float | None = None, peak_bandwidth: float | None = None) -> dict:
    import accelerate
    import peft
    import transformers

    dev = torch.device(device)
    if dev.type == "cuda":
        name = torch.cuda.get_device_name(dev)
        peak = next((value for key, value in DEVICE_PEAKS.items() if key in name), (None, None))
    else:
        name = platform.processor() or platform.machine()
        try:
            with open("/proc/cpuinfo", encoding="utf-8") as handle:
                name = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
        except (OSError, StopIteration):
            pass
        peak = (None, None)
    peak = (peak_flops or peak[0], peak_bandwidth or peak[1])
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "device": f"{name} ({dev.type})",
        "device_type": dev.type,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "peak_flops": peak[0],
        "peak_bandwidth": peak[1],
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "accelerate": accelerate.__version__,
        "commit": _git("rev-parse", "--short=12", "HEAD"),
        "dirty": bool(status) if status is not None else None,
        "code_sha256": code_fingerprint(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


# ----- measuring one configuration ----------------------------------------------------------------
def _load() -> float:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return float("nan")


@dataclass
class Case:
    """One measured configuration: `run_once(meter)` runs it; `setup(meter)` installs its timers."""

    label: str
    run_once: object
    items: int
    setup: object = None
    extra: dict = field(default_factory=dict)
    before: object = None  # called before every repeat, untimed (e.g. a fresh cache file)


def _summary(case: Case, runs: list) -> dict:
    wall, meter, memory, load_before = min(runs, key=lambda run: run[0])
    latencies = [s for run in runs for s in run[1].batch_latency_s]
    items = case.items
    summary = {
        "label": case.label,
        "items": items,
        "wall_s": round(wall, 4),
        "wall_s_repeats": [round(run[0], 4) for run in runs],
        "items_per_s": round(items / wall, 3),
        "ms_per_item": round(1000 * wall / items, 3),
        "batch_latency_ms": {"p50": round(1000 * percentile(latencies, 0.5), 2),
                             "p95": round(1000 * percentile(latencies, 0.95), 2), "batches": len(latencies)},
        "prefills_per_input": round(meter.prefill_rows / items, 4),
        "prefill_tokens": meter.prefill_tokens,
        "decode_tokens": meter.decode_rows,
        "decode_steps": meter.decode_steps,
        "decode_context_tokens": meter.decode_context_tokens,
        "chunk_tokens": meter.chunk_tokens,
        "prefill_lengths": meter.prefill_flop_lengths,
        "phases_s": {name: round(value, 4) for name, value in sorted(meter.phase_s.items())},
        "gate_ms": round(1000 * meter.phase_s.get("gate", 0.0), 3),
        "peak_memory_mb": round(max(run[2].peak_bytes for run in runs) / 2**20, 1),
        "start_memory_mb": round(memory.start_bytes / 2**20, 1),
        "memory_method": memory.method,
        "load_avg_1m": [run[3] for run in runs],
    }
    summary.update(case.extra)
    return summary


def measure(cases: list[Case], *, repeats: int, device: str, language_models) -> tuple[list[dict], dict]:
    """Run every case `repeats` times, round-robin (a burst of load from other processes hits one repeat of
    several cases rather than every repeat of one), and summarise each case by its fastest repeat (the
    counts are the same in every repeat). Returns the summaries and each case's last output by label."""
    runs: dict[str, list] = {case.label: [] for case in cases}
    outputs: dict[str, object] = {}
    for _ in range(repeats):
        for case in cases:
            if case.before is not None:
                case.before()
            meter = Meter(device, language_models)
            load_before = _load()
            with meter:
                if case.setup is not None:
                    case.setup(meter)
                with PeakMemory(device) as memory:
                    synchronize(device)
                    start = time.perf_counter()
                    outputs[case.label] = case.run_once(meter)
                    synchronize(device)
                    wall = time.perf_counter() - start
            runs[case.label].append((wall, meter, memory, load_before))
            logger.info("  %-40s %7.2f s  (load %.1f)", case.label, wall, load_before)
    return [_summary(case, runs[case.label]) for case in cases], outputs


def twn_run(twn, inputs, *, think, batch_size, settings, think_mask=None, cot_cache=None):
    def run_once(meter):
        return twn.encode(inputs, think=think, batch_size=batch_size, generation=settings, think_mask=think_mask,
                          cot_cache=cot_cache() if callable(cot_cache) else cot_cache, return_details=True)

    def setup(meter):
        meter.wrap(twn, "_encode_batch", "batch", latency=True)
        meter.wrap(twn, "prepare_features", "features")
        meter.wrap(twn, "prefill", "prefill")
        meter.wrap(twn, "query_states", "queries")
        meter.wrap(twn, "think", "decode")
        meter.wrap(twn, "_feed_cot", "cached_cot")
        meter.time_module(twn.gate, "gate")

    return run_once, setup


def forced_mask(n: int, rate: float, seed: int) -> list[bool]:
    """Exactly round(rate * n) inputs think, chosen by a seeded shuffle."""
    chosen = set(random.Random(seed).sample(range(n), round(rate * n)))
    return [i in chosen for i in range(n)]


def min_cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(F.cosine_similarity(a.float(), b.float(), dim=-1).min())


def _with_details(summary: dict, output) -> dict:
    _, details = output
    summary["thought"] = sum(d.thought for d in details)
    summary["cot_from_cache"] = sum(d.cot_cached for d in details)
    return summary


class Benchmark:
    def __init__(self, config: dict, device: str):
        from twn_hf.modeling.decoding_twn import GenerationSettings
        from twn_hf.modeling.inputs_twn import normalize_inputs

        self.config, self.device = config, device
        self.GenerationSettings = GenerationSettings
        start = time.perf_counter()
        self.twn, self.floor = build_models(config, device)
        self.build_s = time.perf_counter() - start
        self.lm = [self.twn._language_model(), self.floor.model.language_model]
        workload = config["workload"]
        self.repeats = int(workload.get("repeats", 1))
        self.sweep_repeats = int(config.get("sweeps", {}).get("repeats", 1))
        self.inputs = mixed_workload(workload)
        self.items = normalize_inputs(self.inputs, self.twn.config.max_image_pixels)
        self.results: dict = {"modes": [], "baselines": [], "sweeps": {}, "checks": {}, "profiles": {}}
        self._folder = tempfile.TemporaryDirectory()

    def settings(self, cot_tokens: int):
        return self.GenerationSettings(max_new_tokens=cot_tokens, min_new_tokens=cot_tokens)

    def warm_up(self) -> None:
        """One full batch through every pipeline (first-call allocations, kernel and thread-pool start-up)."""
        bs = self.config["workload"]["batch_size"]
        sample, items = self.inputs[:bs], self.items[:bs]
        meter = Meter(self.device)
        self.twn.encode(sample, think="always", generation=self.settings(2), batch_size=bs)
        baselines.floor_encode(self.twn, self.floor, items, bs, meter)
        baselines.naive_encode(self.twn, items[:2], 2, self.settings(2), meter)
        baselines.generate_encode(self.twn, items[:2], 2, 2, meter)

    # ----- cases -----------------------------------------------------------------------------------
    def twn_case(self, label, inputs, *, think, batch_size, cot_tokens, think_mask=None, cot_cache=None, extra=None,
                 before=None) -> Case:
        run_once, setup = twn_run(self.twn, inputs, think=think, batch_size=batch_size,
                                  settings=self.settings(cot_tokens), think_mask=think_mask, cot_cache=cot_cache)
        info = {"pipeline": "twn", "mode": think, "batch_size": batch_size, "cot_tokens": cot_tokens, **(extra or {})}
        return Case(label, run_once, len(inputs), setup, info, before)

    def baseline_case(self, label, kind, items, *, batch_size, cot_tokens, extra=None) -> Case:
        if kind == "floor":
            def run_once(meter):
                return baselines.floor_encode(self.twn, self.floor, items, batch_size, meter)
        elif kind == "naive":
            def run_once(meter):
                return baselines.naive_encode(self.twn, items, batch_size, self.settings(cot_tokens), meter)
        else:
            def run_once(meter):
                return baselines.generate_encode(self.twn, items, batch_size, cot_tokens, meter)
        info = {"pipeline": kind, "mode": {"floor": "-", "naive": "always", "generate": "always"}[kind],
                "batch_size": batch_size, "cot_tokens": 0 if kind == "floor" else cot_tokens, **(extra or {})}
        return Case(label, run_once, len(items), None, info)

    def run_cases(self, cases: list[Case], repeats: int) -> tuple[list[dict], dict]:
        summaries, outputs = measure(cases, repeats=repeats, device=self.device, language_models=self.lm)
        for summary in summaries:
            if summary["pipeline"] == "twn":
                _with_details(summary, outputs[summary["label"]])
        return summaries, outputs

    def main_comparison(self) -> None:
        workload = self.config["workload"]
        bs, cot = workload["batch_size"], workload["cot_tokens"]
        n = len(self.inputs)
        logger.info("modes and baselines on %d inputs, batch %d, CoT %d tokens, best of %d round-robin repeats",
                    n, bs, cot, self.repeats)
        masks = {rate: forced_mask(n, rate, self.config.get("seed", 0)) for rate in self.config["think_rates"]}
        cache_path = Path(self._folder.name) / "cot.sqlite"

        def fresh_cache():
            for suffix in ("", "-wal", "-shm"):
                Path(f"{cache_path}{suffix}").unlink(missing_ok=True)

        common = dict(batch_size=bs, cot_tokens=cot)
        cases = [self.twn_case("never", self.inputs, think="never", **common)]
        cases += [self.twn_case(f"auto p={rate:g}", self.inputs, think="auto", think_mask=mask,
                                extra={"think_rate": rate}, **common) for rate, mask in masks.items()]
        cases += [
            self.twn_case("always", self.inputs, think="always", **common),
            self.twn_case("always, cold CoT cache", self.inputs, think="always", cot_cache=cache_path,
                          before=fresh_cache, **common),
            self.twn_case("always, warm CoT cache", self.inputs, think="always", cot_cache=cache_path, **common),
            self.baseline_case("(a) floor: bare backbone, last token", "floor", self.items, **common),
            self.baseline_case("(b) naive dual-adapter, 3 prefills", "naive", self.items, **common),
            self.baseline_case("(c) generate(output_hidden_states)", "generate", self.items, **common),
        ]
        summaries, outputs = self.run_cases(cases, self.repeats)
        self.results["modes"] = [s for s in summaries if s["pipeline"] == "twn"]
        self.results["baselines"] = [s for s in summaries if s["pipeline"] != "twn"]

        never_emb = outputs["never"][0]
        always_emb, always_details = outputs["always"]
        warm_emb, warm_details = outputs["always, warm CoT cache"]
        self.results["checks"]["cot_cache"] = {
            "what": "always: embeddings without a cache vs from a warm cache (same CoT tokens, fed as one chunk)",
            "min_cosine": min_cosine(always_emb, warm_emb),
            "min_cosine_cold": min_cosine(always_emb, outputs["always, cold CoT cache"][0]),
            "cots_equal": [d.cot for d in always_details] == [d.cot for d in warm_details],
        }
        worst = 1.0
        for rate, mask in masks.items():
            composed = torch.stack([always_emb[i] if m else never_emb[i] for i, m in enumerate(mask)])
            worst = min(worst, min_cosine(outputs[f"auto p={rate:g}"][0], composed))
        self.results["checks"]["auto_routing"] = {
            "what": "auto (forced routing) vs the never / always embedding of each input", "min_cosine": worst}

    # ----- sweeps --------------------------------------------------------------------------------
    def sweeps(self) -> None:
        """Batch size, context length, CoT length: each sweep's cases measured round-robin."""
        from twn_hf.modeling.inputs_twn import normalize_inputs

        sweeps = self.config.get("sweeps", {})
        cot = self.config["workload"]["cot_tokens"]
        results, checks = self.results["sweeps"], self.results["checks"]

        spec = sweeps.get("batch_size")
        if spec:
            logger.info("batch-size sweep %s", spec["values"])
            inputs, items = self.inputs[: spec["items"]], self.items[: spec["items"]]
            cases = []
            for bs in spec["values"]:
                cases += [self.twn_case(f"{think} bs={bs}", inputs, think=think, batch_size=bs, cot_tokens=cot)
                          for think in ("never", "always")]
                cases.append(self.baseline_case(f"floor bs={bs}", "floor", items, batch_size=bs, cot_tokens=cot))
            results["batch_size"], outputs = self.run_cases(cases, self.sweep_repeats)
            low, high = min(spec["values"]), max(spec["values"])
            checks["batched_vs_single_never"] = {
                "what": f"never: batch {high} vs batch {low}",
                "min_cosine": min_cosine(outputs[f"never bs={high}"][0], outputs[f"never bs={low}"][0])}
            (batched, batched_details), (single, single_details) = outputs[f"always bs={high}"], outputs[f"always bs={low}"]
            checks["batched_vs_single_always"] = {
                "what": f"always: batch {high} vs batch {low}",
                "min_cosine": min_cosine(batched, single),
                "cots_equal": [d.cot for d in batched_details] == [d.cot for d in single_details]}

        spec = sweeps.get("context_tokens")
        if spec:
            logger.info("context-length sweep %s", spec["values"])
            cases = []
            for target in spec["values"]:
                texts, lengths = context_workload(self.twn, target, spec["items"], seed=self.config.get("seed", 0))
                items = normalize_inputs(texts, self.twn.config.max_image_pixels)
                extra = {"context_tokens": target, "measured_context_tokens": round(sum(lengths) / len(lengths), 1)}
                common = dict(batch_size=spec["batch_size"], cot_tokens=cot, extra=extra)
                cases += [self.twn_case(f"{think} ctx={target}", texts, think=think, **common)
                          for think in ("never", "always")]
                cases.append(self.baseline_case(f"floor ctx={target}", "floor", items, **common))
            results["context_tokens"], _ = self.run_cases(cases, self.sweep_repeats)

        spec = sweeps.get("cot_tokens")
        if spec:
            logger.info("CoT-length sweep %s", spec["values"])
            inputs, items = self.inputs[: spec["items"]], self.items[: spec["items"]]
            cases = []
            for length in spec["values"]:
                common = dict(batch_size=spec["batch_size"], cot_tokens=length)
                cases.append(self.twn_case(f"always cot={length}", inputs, think="always", **common))
                cases.append(self.baseline_case(f"(c) generate cot={length}", "generate", items, **common))
            results["cot_tokens"], _ = self.run_cases(cases, self.sweep_repeats)

    def decode_rows(self) -> None:
        """Decode-step time against the number of rows decoding together (always, batch = rows): the profile that
        explains `auto` (a batch decodes only its thinking rows) and the batched-decoding speed-up."""
        spec = self.config.get("sweeps", {}).get("decode_rows")
        if not spec:
            return
        logger.info("decode-step profile by rows %s", spec["values"])
        cases = [self.twn_case(f"decode rows={rows}", self.inputs[:rows], think="always", batch_size=rows,
                               cot_tokens=spec["cot_tokens"], extra={"rows": rows}) for rows in spec["values"]]
        self.results["sweeps"]["decode_rows"], _ = self.run_cases(cases, self.sweep_repeats)

    # ----- profiles ------------------------------------------------------------------------------
    def profiles(self) -> None:
        """torch.profiler op tables for one batch of `never` and of the floor (where the gap to the floor goes)."""
        from torch.profiler import ProfilerActivity, profile

        bs = self.config["workload"]["batch_size"]
        inputs, items = self.inputs[:bs], self.items[:bs]
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if self.device.startswith("cuda") else [])
        meter = Meter(self.device)
        tables = {}
        for name, fn in (
            ("never", lambda: self.twn.encode(inputs, think="never", batch_size=bs)),
            ("floor", lambda: baselines.floor_encode(self.twn, self.floor, items, bs, meter)),
        ):
            with profile(activities=activities) as prof:
                fn()
            averages = prof.key_averages()
            total = sum(event.self_cpu_time_total for event in averages) or 1
            top = sorted(averages, key=lambda event: event.self_cpu_time_total, reverse=True)[:8]
            tables[name] = {
                "total_self_cpu_ms": round(total / 1000, 2),
                "top_ops": [{"op": event.key, "calls": event.count,
                             "self_cpu_ms": round(event.self_cpu_time_total / 1000, 2)} for event in top],
            }
        self.results["profiles"]["one_batch"] = tables

    # ----- derived hardware numbers -------------------------------------------------------------
    def hardware(self, env: dict) -> dict:
        """Per-run achieved prefill FLOP/s (language-model FLOPs over `lm_prefill` time: vision excluded from both) and
        decode bytes/s (weights + KV read per step over the decode time), as MFU / bandwidth utilisation where the
        device peaks are known."""
        from twn_hf.modeling.cost_twn import cost_report

        twn = self.twn
        element = torch.tensor([], dtype=twn.backbone.dtype).element_size()
        kv_bytes = cost_report(twn.config, context_length=1, bytes_per_element=element)["kv_bytes_per_token"]
        embedding = twn.config.embedding_adapter
        lm = twn._language_model()
        head = twn.backbone.lm_head.weight
        weight_bytes = sum(
            p.numel() * p.element_size() for n, p in lm.named_parameters()
            if f".{embedding}." not in n and "embed_tokens" not in n)
        weight_bytes += head.numel() * head.element_size()

        def annotate(run: dict) -> None:
            lengths = run.pop("prefill_lengths", [])
            flops = sum(cost_report(twn.config, context_length=n, bytes_per_element=element)["prefill_flops_per_token"]
                        * n for n in lengths) if run["pipeline"] == "twn" else None
            prefill_s = run["phases_s"].get("lm_prefill") or run["phases_s"].get("prefill")  # the language model's time
            if flops and prefill_s:
                achieved = flops / prefill_s
                run["prefill_tflops"] = round(achieved / 1e12, 4)
                run["prefill_mfu"] = round(achieved / env["peak_flops"], 4) if env["peak_flops"] else None
            decode_s = run["phases_s"].get("decode")
            if run["decode_steps"] and decode_s:
                moved = run["decode_steps"] * weight_bytes + run["decode_context_tokens"] * kv_bytes
                run["decode_gbps"] = round(moved / decode_s / 1e9, 3)
                run["decode_bw_util"] = round(moved / decode_s / env["peak_bandwidth"], 4) if env["peak_bandwidth"] else None
                run["decode_ms_per_step"] = round(1000 * decode_s / run["decode_steps"], 3)
                run["decode_tokens_per_s"] = round(run["decode_tokens"] / decode_s, 2)
            generate_s = run["phases_s"].get("generate")
            if run["decode_steps"] and generate_s:  # (c): prefill and decode are one call; per step incl. prefill
                run["generate_ms_per_step"] = round(1000 * generate_s / (run["decode_steps"] + 1), 3)

        for group in ("modes", "baselines"):
            for run in self.results[group]:
                annotate(run)
        for rows in self.results["sweeps"].values():
            for run in rows:
                annotate(run)
        return {"weight_bytes_per_decode_step": weight_bytes, "kv_bytes_per_token": kv_bytes}


def run_benchmark(config: dict, device: str, peak_flops: float | None = None,
                  peak_bandwidth: float | None = None) -> dict:
    started = time.perf_counter()
    env = environment(device, peak_flops, peak_bandwidth)
    bench = Benchmark(config, device)
    bench.warm_up()
    bench.main_comparison()
    bench.sweeps()
    bench.decode_rows()
    bench.profiles()
    derived = bench.hardware(env)
    results = bench.results
    results["meta"] = env
    results["config"] = {k: v for k, v in config.items() if not k.startswith("_")}
    results["config_file"] = os.path.relpath(config["_path"], ROOT) if "_path" in config else None
    results["model"] = {"parameter_overhead": bench.twn.parameter_overhead(),
                        "dtype": str(bench.twn.backbone.dtype), "build_s": round(bench.build_s, 2), **derived}
    results["goals"] = evaluate_goals(results)
    results["meta"]["wall_s"] = round(time.perf_counter() - started, 1)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cost", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="qwen3-vl-mid-cpu",
                        help="a file in benchmarks/configs (name without .json) or a path")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--markdown", type=Path, default=ROOT / "BENCHMARKS.md",
                        help="re-rendered from every JSON in --results-dir")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: the config's `threads`, else torch's default)")
    parser.add_argument("--peak-tflops", type=float, default=None, help="override the device's bf16 dense peak")
    parser.add_argument("--peak-bandwidth", type=float, default=None, help="override the device's peak, TB/s")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    config = load_config(args.config)
    threads = args.threads or config.get("threads")
    previous_threads = torch.get_num_threads()
    if threads and torch.device(device).type == "cpu":
        torch.set_num_threads(int(threads))
    started = time.perf_counter()
    try:
        results = run_benchmark(config, device, peak_flops=args.peak_tflops and args.peak_tflops * 1e12,
                                peak_bandwidth=args.peak_bandwidth and args.peak_bandwidth * 1e12)
    finally:
        torch.set_num_threads(previous_threads)
    results["meta"]["command"] = " ".join(["python -m benchmarks.cost", *(argv if argv is not None else sys.argv[1:])])
    args.results_dir.mkdir(parents=True, exist_ok=True)
    path = args.results_dir / f"{config['name']}-{torch.device(device).type}.json"
    path.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    write_markdown(args.results_dir, args.markdown)
    logger.info("wrote %s and %s in %.0f s", path, args.markdown, time.perf_counter() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
