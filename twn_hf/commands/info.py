"""`twn info`: TWN's parameter overhead and per-token cost on real backbones (meta device, no download)."""

from __future__ import annotations

import logging

logger = logging.getLogger("twn_hf")

DEFAULT_BACKBONES = ("Qwen/Qwen3-VL-4B-Instruct", "Qwen/Qwen3-VL-8B-Instruct", "Qwen/Qwen2-VL-2B-Instruct")


def overhead_rows(names, context_length: int = 1024, **config_kwargs) -> list[dict]:
    """Build each TWN on the meta device from a stored backbone config and measure its parts."""
    import torch

    from twn_hf.modeling import TWNConfig, TWNModel
    from twn_hf.testing import real_backbone_config

    rows = []
    for name in names:
        config = TWNConfig(backbone_config=real_backbone_config(name), backbone_name_or_path=name, **config_kwargs)
        with torch.device("meta"):
            model = TWNModel(config)
        overhead = model.parameter_overhead()
        cost = model.cost_report(context_length=context_length, bytes_per_element=2)
        rows.append({"backbone": name, **overhead, **cost})
    return rows


def run(args) -> int:
    rows = overhead_rows(args.backbone or DEFAULT_BACKBONES, context_length=args.context_length)
    print(f"TWN with default settings (LoRA r=48 on the language model's projections, K=8 queries, gate 1024); "
          f"costs at context {args.context_length}, bf16 KV")
    print("| backbone | backbone params | adapters | queries+gate | overhead | prefill GFLOP/tok | "
          "decode GFLOP/tok | KV KiB/tok |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        adapters = row["reasoning_adapter"] + row["embedding_adapter"]
        print(f"| {row['backbone']} | {row['backbone_params'] / 1e9:.3f} B | {adapters / 1e6:.1f} M | "
              f"{(row['queries'] + row['gate']) / 1e6:.2f} M | {100 * row['overhead_fraction']:.2f} % | "
              f"{row['prefill_flops_per_token'] / 1e9:.2f} | {row['decode_flops_per_token'] / 1e9:.2f} | "
              f"{row['kv_bytes_per_token'] / 1024:.0f} |")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("info", help="parameter overhead and cost estimates of TWN on real backbones")
    parser.add_argument("--backbone", action="append",
                        help="stored backbone config name, repeatable (default: Qwen3-VL-4B/8B, Qwen2-VL-2B)")
    parser.add_argument("--context-length", type=int, default=1024)
    parser.set_defaults(func=run)
