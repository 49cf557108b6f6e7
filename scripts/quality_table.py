"""Print the README's shipped-generators table from the model cards inside the shipped weights.

    python scripts/quality_table.py
"""

from __future__ import annotations

from gantool.paths import WEIGHTS_DIR
from gantool.train.quality import quality_bars
from gantool.train.shipped import read_shipped
from gantool.train.zoo import count_params, generator_flops

HEADER = ("| model | G params | MFLOP/img | epochs | CPU core-h | FD-judge, fair (95% CI) | FD-judge, raw split | "
          "label accuracy (worst digit): cnn / resnet judge | judges disagree | worst class share: cnn / resnet | "
          "precision / recall | memorized | bars |")


def _accuracy(v: dict) -> str:
    la = v.get("label_accuracy")
    if la is None:
        return "-"
    worst = la["per_class"].index(min(la["per_class"]))
    return f"{la['overall']:.2%} ({worst}: {la['per_class'][worst]:.1%})"


def row(name: str, card: dict, params: float, mflops: float) -> str:
    ev, fd = card["eval"], card["eval"]["fd_judge"]
    views = ev.get("judges") or [{"mode_coverage": ev["mode_coverage"], **({"label_accuracy": ev["label_accuracy"]}
                                                                         if "label_accuracy" in ev else {})}]
    raw = ev.get("raw_reference")
    missed = quality_bars(ev)
    disagree = ", ".join(f"{r:.2%}" for r in ev.get("judge_disagreement", {}).values()) or "-"
    return (f"| `{name}` | {params / 1e6:.2f}M | {mflops / 1e6:.1f} | {card['epochs']:.1f} | {card['cpu_hours']:.2f} | "
            f"{fd['value']:.2f} ({fd['ci95'][0]:.1f}-{fd['ci95'][1]:.1f}) | "
            f"{'same split' if raw is None else format(raw['fd_judge'], '.1f')} | "
            f"{' / '.join(_accuracy(v) for v in views)} | {disagree} | "
            f"{' / '.join(format(v['mode_coverage']['worst_class_share'], '.2%') for v in views)} | "
            f"{ev['precision']:.3f} / {ev['recall']:.3f} | {ev['memorization']['share']:.2%} | "
            f"{'met' if not missed else '**not met**: ' + '; '.join(missed)} |")


def main() -> None:
    rows, commands = [], []
    for name in ("gan", "dcgan", "cgan", "cdcgan", "cgan-in", "cwgan"):
        path = WEIGHTS_DIR / f"{name}.safetensors"
        if not path.is_file():
            rows.append(f"| `{name}` | - | - | - | - | not shipped |" + " |" * 8)
            continue
        spec, g, card = read_shipped(path)
        rows.append(row(name, card, count_params(g), generator_flops(spec)))
        commands.append(f"{name}: {card['command']}")
    print(HEADER)
    print("|" + "---|" * HEADER.count(" | ") + "---|")
    print("\n".join(rows))
    print("\n```bash\n" + "\n".join(commands) + "\n```")


if __name__ == "__main__":
    main()
