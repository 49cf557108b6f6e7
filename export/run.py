"""`gantool export`: resolve the model, export fp32, derive the precision variant, validate, report.

Every file is built and validated in a temp file beside its target and renamed over the target only
after every check passed: a failed or interrupted export leaves whatever was at the target exactly
as it was, and no temp file behind (stale temps of a killed export are removed on the next run).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gantool.contract import CLASS_WEIGHTS, LABELS, GeneratorMetadata
from gantool.errors import GantoolError
from gantool.export.onnx import DEFAULT_OPSET, export_onnx, graph_form, set_metadata
from gantool.export.parity import ParityError, ParityReport, compare_backend, torch_reference
from gantool.export.precision import EXPORT_PRECISIONS, fp16_emulation, to_fp16, to_int8
from gantool.export.semantic import JudgeAgreement, judge_agreement
from gantool.fileio import refuse_overwrite, remove_stale_temps, scratch, staged
from gantool.runtime.backends.ort import OrtBackend
from gantool.spec import ModelSpec

log = logging.getLogger(__name__)


class SemanticError(GantoolError):
    pass


@dataclass
class ExportResult:
    path: Path
    metadata: GeneratorMetadata
    parity: list[ParityReport] = field(default_factory=list)
    agreement: JudgeAgreement | None = None  # the file's own precision on ONNX Runtime (fp16, int8)
    checks: list[JudgeAgreement] = field(default_factory=list)  # every judge check, recorded in the metadata
    companions: list["ExportResult"] = field(default_factory=list)  # written with it (a Triton repo's mix model)

    @property
    def spec(self) -> ModelSpec:
        return self.metadata.spec

    @property
    def precision(self) -> str:
        return self.metadata.precision

    def text(self) -> str:
        parts = [f"{self.path}:"] if self.companions else []
        parts += [r.text() for r in self.parity]
        parts += [c.text() for c in self.checks]
        parts += [f"{c.path}:\n{c.text()}" for c in self.companions]
        return "\n".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "precision": self.precision, "graph": self.metadata.graph,
                "parity": [r.to_dict() for r in self.parity],
                "judge_agreement": None if self.agreement is None else self.agreement.to_dict(),
                "checks": [c.to_dict() for c in self.checks], "family": self.metadata.family,
                **({"companions": [c.to_dict() for c in self.companions]} if self.companions else {})}


def weights_digest(spec: ModelSpec, g: Any) -> str:
    """The family digest: of the spec and every weight, so files with equal digests are one model."""
    h = hashlib.sha256(json.dumps(spec.to_dict(), sort_keys=True).encode())
    for name, t in sorted(g.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def default_name(arch: str, precision: str, condition: str = LABELS) -> str:
    from gantool.runtime.variants import MIX_TAG, variant_name

    if condition == CLASS_WEIGHTS:
        return variant_name(arch, MIX_TAG)
    return f"{arch}.onnx" if precision == "fp32" else f"{arch}.{precision}.onnx"


def output_path(output: str | None, arch: str, precision: str, condition: str = LABELS) -> Path:
    """-o FILE as is; -o DIR/ (a trailing slash) or an existing folder means "into this folder"."""
    if output is None:
        return Path(default_name(arch, precision, condition))
    if output.endswith(("/", "\\")) or Path(output).is_dir():
        return Path(output) / default_name(arch, precision, condition)
    return Path(output)


def run_export(model: str, output: str | None = None, precision: str = "fp32", opset: int = DEFAULT_OPSET,
               semantic_samples: int | None = None, lower: bool = True, fold: bool = True,
               seed: int = 0, family: str | None = None, check_bf16: bool = False,
               phases: bool = False, condition: str = LABELS, int8_activations: str = "s8") -> ExportResult:
    """Export, validate and write one ONNX file; seed picks the validation inputs. family: the digest
    shared by the variants of one export (export/variants.py) [default: this model's]; check_bf16: also judge this fp32 file
    computed in bf16 by OpenVINO and record the verdict, so the runtime may choose that (never fails);
    condition=class_weights: the mix graph (fp32, conditional models), parity on mixtures too;
    int8_activations: s8 (TensorRT's form) or u8 (ONNX Runtime's fast x86 form), precision int8 only."""
    import onnx

    from gantool.train.checkpoint import load_generator

    if precision not in EXPORT_PRECISIONS:
        raise GantoolError(f"unknown precision {precision!r}; allowed: {', '.join(EXPORT_PRECISIONS)}.")
    spec, g = load_generator(model)
    if condition == CLASS_WEIGHTS and not spec.conditional:
        raise GantoolError(f"--mix writes a conditional model's class-weight graph, but {spec.arch} is unconditional.",
                           note="pick a conditional model: cgan, cdcgan, cwgan or cgan-in.")
    if condition == CLASS_WEIGHTS and precision != "fp32":
        raise GantoolError(f"--mix writes the class-weight graph in fp32 only, not {precision}.",
                           note="drop --precision.")
    if int8_activations != "s8" and precision != "int8":
        raise GantoolError(f"int8 activations apply to --precision int8, not {precision}.")
    path = output_path(output, spec.arch, precision, condition)
    refuse_overwrite({"-o": path}, {"--model": model})
    if path.is_dir():
        raise GantoolError(f"-o {path} is a folder; allowed: a file path, or a folder with a trailing slash.")
    remove_stale_temps(path.parent if str(path.parent) else ".", path.name)
    log.info("exporting %s%s (opset %d, %s graph) ...", spec.arch,
             "'s class-weight graph" if condition == CLASS_WEIGHTS else "", opset, graph_form(lower, fold, phases))
    family = family or weights_digest(spec, g)  # every export names its weights: a mix graph finds its model
    fp32_model, meta = export_onnx(spec, g, opset=opset, lower=lower, fold=fold, phases=phases, condition=condition)
    ref = torch_reference(g)
    n = {} if semantic_samples is None else {"n": semantic_samples}
    with staged(path) as tmp:
        result = ExportResult(path=path, metadata=meta.replace(precision=precision, family=family,
                                                               int8_activations=int8_activations))
        log.info("parity of the fp32 graph against torch ...")
        fp32_bytes = fp32_model.SerializeToString()
        result.parity.append(compare_backend(spec, OrtBackend(fp32_bytes, name="onnxruntime-cpu fp32"), ref, "fp32",
                                             seed, condition=condition))
        low = None
        if precision == "fp32":
            final = fp32_model
            set_metadata(final, result.metadata)  # the family, where given
            tmp.write_bytes(final.SerializeToString())
        elif precision == "fp16":
            final = to_fp16(fp32_model)
            set_metadata(final, result.metadata)
            tmp.write_bytes(final.SerializeToString())
            log.info("parity of the fp16 graph and of its emulation against torch ...")
            low = OrtBackend(fp16_emulation(fp32_model).SerializeToString(), name="fp16-emulation")
            result.parity.append(compare_backend(spec, OrtBackend(tmp, name="onnxruntime-cpu fp16 graph"), ref,
                                                 "fp16", seed))
            result.parity.append(compare_backend(spec, low, ref, "fp16", seed))
        else:
            with scratch(path) as fp32_tmp:  # the quantizer reads a file
                fp32_tmp.write_bytes(fp32_bytes)
                log.info("calibrating int8 (%s activations) on %s ...", int8_activations, spec.arch)
                to_int8(fp32_tmp, tmp, spec, int8_activations)
            final = onnx.load(str(tmp))
            set_metadata(final, result.metadata)
            tmp.write_bytes(final.SerializeToString())
            low = OrtBackend(tmp, name="onnxruntime-cpu int8")
            log.info("parity of the int8 graph against torch ...")
            result.parity.append(compare_backend(spec, low, ref, "int8", seed))
        if low is not None:
            log.info("judge agreement of %s with fp32 ...", precision)
            result.agreement = judge_agreement(spec, g, low, precision, **n)
            result.checks.append(result.agreement)
        if not all(r.passed for r in result.parity):
            raise ParityError([r for r in result.parity if not r.passed])
        if result.agreement is not None and not result.agreement.passed:
            raise SemanticError(f"{precision} changes what the images show: {result.agreement.text()}",
                                note="keep more layers in fp32 (export/precision.py) or use a higher precision.")
        result.checks += _engine_checks(spec, g, tmp, precision, check_bf16, n, int8_activations)
        records = [c.validation() for c in result.checks]
        if records:  # the verdicts travel in the file, for the runtime to choose by
            result.metadata = result.metadata.replace(validations=tuple(records))
            set_metadata(final, result.metadata)
            tmp.write_bytes(final.SerializeToString())
    return result


def _engine_checks(spec: ModelSpec, g: Any, path: Path, precision: str, check_bf16: bool,
                   n: dict[str, int], int8_activations: str = "s8") -> list[JudgeAgreement]:
    """The same judge checks on the other CPU engine the runtime may choose: OpenVINO on an s8 int8 file
    (its own int8 kernels), and OpenVINO computing an fp32 file in bf16 where this CPU has bf16 units."""
    if precision == "int8" and int8_activations == "u8":
        # ORT's form: OpenVINO 2026.4's low-precision passes fail to compile it (asymmetric zero points at
        # a DepthToSpace), and it runs the s8 file on its own int8 kernels anyway
        log.info("u8 activations: ONNX Runtime's form, not judged on OpenVINO (it runs NAME.int8.onnx)")
        return []
    from gantool.cpu import cpu_info
    from gantool.extras import installed
    from gantool.runtime.backends.openvino import OpenVinoBackend

    if not installed("openvino"):
        if check_bf16 or precision == "int8":
            log.info("OpenVINO is not installed: its variants are not validated (pip install \"gantool[openvino]\")")
        return []
    checks = []
    if precision == "int8":
        log.info("judge agreement of int8 on OpenVINO with fp32 ...")
        checks.append(judge_agreement(spec, g, OpenVinoBackend(path, name="openvino int8"), "int8", **n))
    if precision == "fp32" and check_bf16:
        if cpu_info().bf16_units is None:
            log.info("this CPU (%s) has no bf16 units: bf16 is not validated", cpu_info().model)
        else:
            log.info("judge agreement of bf16 (OpenVINO) with fp32 ...")
            checks.append(judge_agreement(spec, g, OpenVinoBackend(path, name="openvino bf16", compute="bf16"),
                                          "bf16", **n))
    for c in checks:
        c.engine = "openvino"
    return checks


def run_triton_export(model: str, repo: str, precision: str = "fp32", opset: int = DEFAULT_OPSET,
                      max_batch: int | None = None, plan: str | None = None,
                      semantic_samples: int | None = None, lower: bool = True, seed: int = 0) -> ExportResult:
    """Export and validate as usual, then lay the file (or a built engine) out as a Triton model; a
    conditional model's repository also holds NAME-mix, its fp32 class-weight graph (companions)."""
    import tempfile

    from gantool.export.triton import DEFAULT_MAX_BATCH, plan_max_batch, write_repository

    if max_batch is not None and max_batch < 1:
        raise GantoolError(f"--max-batch must be >= 1, got {max_batch}.")
    if plan is not None and not Path(plan).is_file():
        raise GantoolError(f"--plan {plan}: no such engine file.")
    # max_batch_size within the plan's profile, checked before any export work [default: 256]
    max_batch = plan_max_batch(plan, max_batch) if plan is not None else (max_batch or DEFAULT_MAX_BATCH)
    if Path(repo).exists() and not Path(repo).is_dir():
        raise GantoolError(f"-o {repo} is a file; a Triton model repository is a folder.")
    with tempfile.TemporaryDirectory(prefix="gantool-triton-") as tmp:
        result = run_export(model, str(Path(tmp) / "model.onnx"), precision, opset, semantic_samples, lower,
                            seed=seed)
        if result.spec.conditional:  # validated before either model lands in the repository
            mix = run_export(model, str(Path(tmp) / "mix.onnx"), "fp32", opset, lower=lower, seed=seed,
                             condition=CLASS_WEIGHTS)
            mix.path = write_repository(repo, mix.metadata, mix.path, max_batch, name=f"{mix.spec.arch}-mix")
            result.companions.append(mix)
        result.path = write_repository(repo, result.metadata, result.path, max_batch, plan)
    return result
