"""`twn export`: write a hub-ready folder (weights, remote code, sentence-transformers files, card, requirements)."""

from __future__ import annotations

import logging

logger = logging.getLogger("twn_hf")


def run(args) -> int:
    from twn_hf.export import read_samples

    samples = read_samples(args.cost_sample) if args.cost_sample else None
    try:
        files = _export(args, samples)
    except FileExistsError as error:
        logger.error("error: %s", error)
        return 2
    print(f"exported {len(files)} files to {args.output}:")
    for name in files:
        print(f"  {name}")
    return 0


def _export(args, samples) -> list[str]:
    from twn_hf.cards import DEFAULT_LICENSE
    from twn_hf.export import export_checkpoint

    return export_checkpoint(
        args.model,
        args.output,
        revision=args.revision,
        repo_id=args.repo_id,
        results=args.results,
        measure_cost=args.measure_cost,
        cost_samples=samples,
        self_contained=args.self_contained,
        overwrite=args.overwrite,
        device=args.device,
        base_model=args.base_model,
        license=args.license or DEFAULT_LICENSE,
        datasets=args.dataset,
        language=args.language,
        tags=args.tag,
    )


def register(subparsers) -> None:
    parser = subparsers.add_parser("export", help="write a hub-ready folder (weights, remote code, ST files, card)")
    parser.add_argument("output", help="folder to write (must be empty, or an earlier export with --overwrite)")
    parser.add_argument("--model", required=True, help="TWN checkpoint folder or Hub id")
    parser.add_argument("--revision", help="Hub revision of --model")
    parser.add_argument("--device", help="device for --measure-cost (default: where the model loads, cpu)")
    parser.add_argument("--repo-id", help="Hub id the card's usage snippets load (default: the folder name)")
    parser.add_argument("--results", help="JSON with MMEB-V2 scores ({task: score} or {'mmeb_v2': ...}) "
                                          "and/or 'think_costs' for the card")
    parser.add_argument("--measure-cost", action="store_true",
                        help="measure the think-mode cost table on a built-in sample of 8 inputs")
    parser.add_argument("--cost-sample", help="measure the cost table on these inputs instead (JSON list or JSONL)")
    weights = parser.add_mutually_exclusive_group()
    weights.add_argument("--self-contained", dest="self_contained", action="store_true", default=None,
                         help="include the backbone weights (model.safetensors)")
    weights.add_argument("--adapter-only", dest="self_contained", action="store_false",
                         help="adapters, queries and gate only; the backbone is referenced by id + revision")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier export in the output folder")
    parser.add_argument("--base-model", help="card metadata: the backbone's Hub id (default: from the config)")
    parser.add_argument("--license", help="card metadata: license (default: apache-2.0)")
    parser.add_argument("--dataset", action="append", help="card metadata: a training dataset id (repeatable)")
    parser.add_argument("--language", action="append", help="card metadata: a language code (repeatable)")
    parser.add_argument("--tag", action="append", help="card metadata: an extra tag (repeatable)")
    parser.set_defaults(func=run)
