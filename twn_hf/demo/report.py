"""TWN-Digits results as JSON, a markdown table and a trade-off plot (PNG drawn with PIL)."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image, ImageDraw

from twn_hf.demo.digits import TASKS

COLUMNS = (*TASKS, "direct", "reasoning", "overall")


def _row(name: str, result: dict, seconds: str = "") -> str:
    hit = result["hit@1"]
    rates = result.get("think_rate", {})
    cells = [f"{hit[c]:.1f}" for c in COLUMNS]
    think = f"{rates.get('direct', 0):.0f} / {rates.get('reasoning', 0):.0f}" if rates else ""
    cot = f"{result['cot_tokens_per_query']:.1f}" if "cot_tokens_per_query" in result else ""
    return f"| {name} | " + " | ".join(cells) + f" | {think} | {cot} | {seconds} |"


def markdown(results: dict) -> str:
    test = results["test"]
    header = "| mode | " + " | ".join(COLUMNS) + " | think % (direct / reasoning) | CoT tokens / query | wall s |"
    lines = [header, "|" + "---|" * (len(COLUMNS) + 4)]
    lines.append(_row("never", test["never"], f"{test['never']['seconds']:.1f}"))
    lines.append(_row("always", test["always"], f"{test['always']['seconds']:.1f}"))
    lines.append(_row(f"auto (threshold {test['auto']['threshold']:.2f})", test["auto"], f"{test['auto']['seconds']:.1f}"))
    lines.append(_row("random gate, same think rate", test["random_gate"]))
    if "no_detach" in results:
        lines.append(_row("ablation: detach off, never", results["no_detach"]["never"]))
        lines.append(_row("ablation: detach off, always", results["no_detach"]["always"]))
    lines += ["", "Threshold sweep (auto):", "",
              "| threshold | direct | reasoning | overall | think % (direct / reasoning) | CoT tokens / query |",
              "|---|---|---|---|---|---|"]
    for point in test["sweep"]:
        hit, rate = point["hit@1"], point["think_rate"]
        lines.append(f"| {point['threshold']:.1f} | {hit['direct']:.1f} | {hit['reasoning']:.1f} | "
                     f"{hit['overall']:.1f} | {rate['direct']:.0f} / {rate['reasoning']:.0f} | "
                     f"{point['cot_tokens_per_query']:.1f} |")
    return "\n".join(lines) + "\n"


def plot(results: dict, path: Path, size=(640, 420)) -> None:
    """hit@1 (overall) against mean CoT tokens per query across the sweep; never/always end points, default marked."""
    test = results["test"]
    points = [(p["cot_tokens_per_query"], p["hit@1"]["overall"]) for p in test["sweep"]]
    ends = [(test["never"]["cot_tokens_per_query"], test["never"]["hit@1"]["overall"], "never"),
            (test["always"]["cot_tokens_per_query"], test["always"]["hit@1"]["overall"], "always"),
            (test["auto"]["cot_tokens_per_query"], test["auto"]["hit@1"]["overall"],
             f"auto, default threshold {test['auto']['threshold']:.2f}")]
    xs = [x for x, _ in points] + [x for x, _, _ in ends]
    ys = [y for _, y in points] + [y for _, y, _ in ends]
    x_max = max(xs) * 1.05 or 1.0
    y_min, y_max = max(0.0, min(ys) - 5), min(100.0, max(ys) + 5)
    left, top, right, bottom = 60, 30, size[0] - 20, size[1] - 50
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)

    def at(x, y):
        return (left + (right - left) * x / x_max, bottom - (bottom - top) * (y - y_min) / (y_max - y_min or 1))

    draw.line([(left, top), (left, bottom), (right, bottom)], fill="black")
    for tick in range(5):
        y = y_min + (y_max - y_min) * tick / 4
        draw.text((5, at(0, y)[1] - 6), f"{y:.0f}", fill="black")
        x = x_max * tick / 4
        draw.text((at(x, y_min)[0] - 8, bottom + 5), f"{x:.0f}", fill="black")
    draw.text((left, 8), "TWN-Digits test: overall hit@1 vs mean CoT tokens per query (threshold sweep)", fill="black")
    draw.text((right - 170, bottom + 25), "mean CoT tokens per query", fill="black")
    ordered = sorted(points)
    draw.line([at(x, y) for x, y in ordered], fill=(30, 90, 200), width=2)
    for x, y in ordered:
        cx, cy = at(x, y)
        draw.ellipse((cx - 3, cy - 3, cx + 3, cy + 3), fill=(30, 90, 200))
    # Label offsets: never to the right, always above-left, the default threshold below-left (they sit close).
    styles = [((120, 120, 120), (8, -16)), ((0, 0, 0), (-45, -22)), ((220, 40, 40), (-230, 10))]
    for (x, y, label), (colour, (dx, dy)) in zip(ends, styles):
        cx, cy = at(x, y)
        draw.rectangle((cx - 5, cy - 5, cx + 5, cy + 5), outline=colour, width=2)
        draw.text((max(left + 2, min(cx + dx, right - 6 * len(label))), cy + dy), label, fill=colour)
    image.save(path)


def write_report(results: dict, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps(results, indent=2, default=float))
    (folder / "results.md").write_text(markdown(results))
    plot(results, folder / "tradeoff.png")
