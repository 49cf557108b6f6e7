"""Print the README's shipped-generators table from the model cards inside the shipped weights.

    python scripts/quality_table.py
"""

from __future__ import annotations

from gantool.paths import WEIGHTS_DIR
from gantool.train.quality import quality_bars
from gantool.train.shipped import read_shipped
from gantool.train.zoo import count_params, generator_flops


def main() -> None:
    rows, commands = [], []
    for name in ("gan", "dcgan", "cgan", "cdcgan", "cgan-in", "cwgan"):
        path = WEIGHTS_DIR / f"{name}.safetensors"
        if not path.is_file():
            rows.append(f"| `{name}` | - | - | - | - | not shipped | | | | | |")
            continue
        spec, g, card = read_shipped(path)
        ev, fd = card["eval"], card["eval"]["fd_judge"]
        la = ev.get("label_accuracy")
        acc = f"{la['overall']:.2%} ({min(la['per_class']):.1%})" if la else "-"
        missed = quality_bars(ev)
        rows.append(f"| `{name}` | {count_params(g) / 1e6:.2f}M | {generator_flops(spec) / 1e6:.1f} | "
                    f"{card['epochs']:.1f} | {card['cpu_hours']:.2f} | {fd['value']:.2f} ({fd['ci95'][0]:.1f}-"
                    f"{fd['ci95'][1]:.1f}) | {acc} | {ev['mode_coverage']['worst_class_share']:.2%} | "
                    f"{ev['precision']:.3f} / {ev['recall']:.3f} | {ev['memorization']['share']:.2%} | "
                    f"{'met' if not missed else '**not met**: ' + '; '.join(missed)} |")
        commands.append(f"{name}: {card['command']}")
    print("| model | G params | MFLOP/img | epochs | CPU core-h | FD-judge (95% CI) | label accuracy (worst digit) "
          "| worst class share | precision / recall | memorized | bars |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print("\n```bash\n" + "\n".join(commands) + "\n```")


if __name__ == "__main__":
    main()
