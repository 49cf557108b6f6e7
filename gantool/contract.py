"""The generator contract: what a generator file takes, gives and says about itself (torch-free).

In the role optimum's `OnnxConfig` plays for its exporters, one `GeneratorContract` per spec declares
the I/O signature (names, dtypes, shapes, the dynamic batch axis) and the parity tolerances; the
exporter writes the graph and its metadata from it, and every reader (parity, TensorRT, the runtime,
serve, bench) validates a file against it. The metadata schema lives here too: `write_metadata` and
`read_metadata` are the only code that knows its keys. Label conventions (cycling, grids) live here
so that `gantool eval`, training grids, the runtime and the server lay images out alike.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from gantool.errors import GantoolError, MetadataError
from gantool.noise import NOISE_FUNCTION
from gantool.spec import ModelSpec

# --- the I/O signature -----------------------------------------------------------------------------
Z, LABELS, IMAGES = "z", "labels", "images"
CLASS_WEIGHTS = "class_weights"  # the mix graph's condition: (batch, K) convex combinations of one-hot rows
# What a conditional graph is conditioned on: integer labels (every graph of a family but one), or class
# weights (NAME.mix.onnx, a graph of its own: the label graph, its engines and Triton clients stay as they are).
CONDITIONS = (LABELS, CLASS_WEIGHTS)
WEIGHT_SUM_TOL = 1e-3  # |sum of a class-weight row - 1| allowed (a user's 0.1 x 10 sums to 0.9999999)
BATCH = "batch"  # the name of the dynamic axis 0 of every input and output
MAX_BATCH = 65536  # the exporter's declared bound on the batch axis
Z_LIMIT = 1e3  # bound on z's root mean square: the noise is N(0, 1) or U[-1, 1); far larger z overflow in the net


@dataclass(frozen=True)
class TensorSpec:
    """One graph tensor: dtype as a numpy name, shape with BATCH (or any str/None) for a dynamic axis."""

    name: str
    dtype: str
    shape: tuple[int | str | None, ...]

    def text(self) -> str:
        return f"{self.name}: {self.dtype} ({', '.join(str(d) for d in self.shape)})"


@dataclass(frozen=True)
class GeneratorContract:
    """The signature a spec implies: z (batch, latent) float32 [+ labels (batch,) int64, or class_weights
    (batch, K) float32 for a mix graph] -> images (batch, C, H, W) float32 in spec.output_range."""

    spec: ModelSpec
    condition: str = LABELS  # CONDITIONS: what a conditional graph takes beside z

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        z = TensorSpec(Z, "float32", (BATCH, self.spec.latent_dim))
        if not self.spec.conditional:
            return (z,)
        if self.condition == CLASS_WEIGHTS:
            return z, TensorSpec(CLASS_WEIGHTS, "float32", (BATCH, self.spec.num_classes))
        return z, TensorSpec(LABELS, "int64", (BATCH,))

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        return (TensorSpec(IMAGES, "float32", (BATCH, *self.spec.image_shape)),)

    @property
    def input_names(self) -> list[str]:
        return [t.name for t in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [t.name for t in self.outputs]

    @property
    def dynamic_axes(self) -> dict[str, dict[int, str]]:
        return {t.name: {0: BATCH} for t in (*self.inputs, *self.outputs)}

    def input_dims(self) -> dict[str, int]:
        """Input name -> per-sample size (0 for the scalar label): what an engine profile needs."""
        return {t.name: int(t.shape[1]) if len(t.shape) > 1 else 0 for t in self.inputs}  # type: ignore[arg-type]

    def feeds(self, z: np.ndarray, labels: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """The feed dict for (z, condition), by the contract's names; a mix graph given integer labels
        gets their one-hot rows (the same images, exactly: tested)."""
        if labels is None or not self.spec.conditional:
            return {Z: z}
        if self.condition == CLASS_WEIGHTS:
            return {Z: z, CLASS_WEIGHTS: one_hot(labels, self.spec.num_classes) if labels.ndim == 1 else labels}
        return {Z: z, LABELS: labels}

    def default_labels(self, n: int) -> np.ndarray | None:
        """Labels for n samples when none are given: classes cycled 0..K-1 (None: unconditional)."""
        return cycle_labels(n, self.spec.num_classes) if self.spec.conditional else None

    def check_graph(self, inputs: Iterable[TensorSpec], outputs: Iterable[TensorSpec], source: str) -> None:
        """Raise MetadataError unless the graph's real I/O matches what its metadata declares."""
        for kind, want, got in (("input", self.inputs, list(inputs)), ("output", self.outputs, list(outputs))):
            have = {t.name: t for t in got}
            if set(have) != {t.name for t in want}:
                raise MetadataError(f"{source}: its gantool metadata declares {kind}s "
                                    f"{', '.join(t.name for t in want)}, but the graph has "
                                    f"{', '.join(have) or 'none'}.",
                                    note="the metadata belongs to another graph; re-export the model with gantool "
                                         "export.")
            for t in want:
                g = have[t.name]
                if g.dtype != t.dtype or not _shape_fits(g.shape, t.shape):
                    raise MetadataError(f"{source}: its metadata declares {kind} {t.text()}, but the graph's is "
                                        f"{g.text()}.",
                                        note="the metadata belongs to another graph; re-export the model with "
                                             "gantool export.")


def _shape_fits(graph: Sequence[int | str | None], declared: Sequence[int | str | None]) -> bool:
    """Same rank; every static declared dim equal (a dynamic graph dim fits a static one only for batch)."""
    if len(graph) != len(declared):
        return False
    for i, (g, d) in enumerate(zip(graph, declared)):
        if isinstance(d, int) and g != d:
            return False
        if i == 0 and isinstance(g, int) and g != 1 and d == BATCH:
            return False  # a fixed batch other than 1 would break every other batch size
    return True


# --- label conventions and grid layout -------------------------------------------------------------
GRID_COLUMNS = 8  # images per row of an unconditional grid, and per label of a conditional one
GRID_IMAGES = 64  # an unconditional grid's default size


def cycle_labels(n: int, num_classes: int) -> np.ndarray:
    """0, 1, ..., K-1, 0, 1, ...: the labels of n samples when none are asked for (eval, parity, bench)."""
    return np.arange(n, dtype=np.int64) % num_classes


def one_hot(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """(B,) int labels -> (B, K) float32 class weights, one 1 per row."""
    out = np.zeros((len(labels), num_classes), np.float32)
    out[np.arange(len(labels)), labels] = 1.0
    return out


def check_class_weights(weights: Any, num_classes: int) -> np.ndarray:
    """(B, K) float32 class weights, or ValueError saying what is wrong: every row a convex combination
    of one-hot rows (finite, non-negative, summing to 1 within WEIGHT_SUM_TOL). Torch-free: the runtime
    and the server check alike."""
    raw = np.asarray(weights)
    if raw.size == 0:
        raise ValueError(f"class weights have no rows; give one row of {num_classes} weights per image")
    if raw.dtype.kind not in "iuf":  # strings and booleans are not weights, though numpy would convert them
        raise ValueError(f"class weights must be numbers, shape (n, {num_classes}), got dtype {raw.dtype}")
    w = raw.astype(np.float64)
    if w.ndim == 1:
        w = w.reshape(1, -1)
    if w.ndim != 2 or w.shape[1] != num_classes or w.shape[0] < 1:
        raise ValueError(f"class weights must have shape (n, {num_classes}), one row per image, got {w.shape}")
    if not np.isfinite(w).all():
        raise ValueError("class weights must be finite")
    if (w < 0).any():
        row = int(np.flatnonzero((w < 0).any(axis=1))[0])
        raise ValueError(f"class weights must be non-negative; row {row} has {w[row].min():g}")
    sums = w.sum(axis=1)
    bad = np.flatnonzero(np.abs(sums - 1) > WEIGHT_SUM_TOL)
    if bad.size:
        raise ValueError(f"each row of class weights must sum to 1 (within {WEIGHT_SUM_TOL:g}); row {int(bad[0])} "
                         f"sums to {sums[bad[0]]:.6g}")
    return np.ascontiguousarray(w, dtype=np.float32)


def class_path(a: int, b: int, steps: int, num_classes: int) -> np.ndarray:
    """(steps, K) class weights moving from class a to class b in equal steps, both ends included."""
    t = np.linspace(0.0, 1.0, steps)
    w = np.zeros((steps, num_classes), np.float64)
    w[:, a] += 1 - t
    w[:, b] += t
    return w.astype(np.float32)


def grid_labels(rows: Sequence[int] | np.ndarray, per_label: int = GRID_COLUMNS) -> np.ndarray:
    """A conditional grid's labels: one row per label, `per_label` columns."""
    return np.repeat(np.asarray(rows, dtype=np.int64), per_label)


def grid_columns(conditional: bool, per_label: int = GRID_COLUMNS, n: int = GRID_IMAGES) -> int:
    """How many images a grid row holds: per_label for conditional grids, GRID_COLUMNS otherwise."""
    return per_label if conditional else min(GRID_COLUMNS, n)


# --- parity tolerances -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Tolerance:
    """Bounds on |exported - reference| over all pixels, in output units (outputs span spec.output_range,
    2.0 for Tanh). None leaves that statistic unbounded."""

    max_abs: float | None = None
    p99_abs: float | None = None
    mean_abs: float | None = None

    def holds(self, max_abs: float, p99_abs: float, mean_abs: float) -> bool:
        return all(bound is None or value <= bound for bound, value in
                   ((self.max_abs, max_abs), (self.p99_abs, p99_abs), (self.mean_abs, mean_abs)))

    def text(self) -> str:
        parts = [f"{name} abs <= {bound:g}" for name, bound in
                 (("max", self.max_abs), ("p99", self.p99_abs), ("mean", self.mean_abs)) if bound is not None]
        return ", ".join(parts)


# fp32: the exporter's own error. fp16: judged on the emulation (every tensor rounded to fp16). int8 moves
# single pixels by up to ~0.75 (a quarter of the range), so its max is not bounded; its p99 and mean are,
# and the judge must agree on what the images show (export/semantic.py).
TOLERANCES: dict[str, Tolerance] = {
    "fp32": Tolerance(max_abs=1e-4),
    "fp16": Tolerance(max_abs=3e-2),
    "int8": Tolerance(p99_abs=0.25, mean_abs=3e-2),
}
# One graph in two file formats (.ort against the .onnx it was converted from), per precision: the same
# kernels, but the conversion fuses at its own level: an fp16 output may round one fp16 step (4.9e-4 near
# 1) apart, an int8 one sitting on a rounding boundary one quantization step (a handful per thousand)
FORMAT_TOLERANCES: dict[str, Tolerance] = {
    "fp32": Tolerance(max_abs=1e-4),
    "fp16": Tolerance(max_abs=1e-3),
    "int8": Tolerance(p99_abs=1e-3, mean_abs=1e-4),
}


@dataclass(frozen=True)
class SemanticBar:
    """What a reduced precision may change in what the images show, against fp32 from the same (z, label):
    the judge's class agreement, the drift of label accuracy, and the FD-judge between the two image sets."""

    agreement: float  # least share of samples the judge classes alike
    label_drift: float  # largest |label accuracy - fp32's| (conditional models)
    fd_between: float  # largest FD-judge between the two sets

    def text(self) -> str:
        return (f"agreement >= {self.agreement:.1%}, label accuracy within {self.label_drift * 100:.1f} points, "
                f"FD-judge between the sets <= {self.fd_between:g}")


# Every reduced precision is judged alike (bf16 keeps 8 mantissa bits: its element-wise bound would be
# looser than fp16's, these are not). The FD bar is the real-data floor (10k training against the test
# digits under the primary judge, docs/quality.md): a variant must move the set less than real data differs.
REAL_FD_FLOOR = 4.65
SEMANTIC_SAMPLES = 2000
SEMANTIC_BARS: dict[str, SemanticBar] = {p: SemanticBar(agreement=0.995, label_drift=0.003, fd_between=REAL_FD_FLOOR)
                                         for p in ("fp16", "bf16", "int8")}

# --- precision vocabulary --------------------------------------------------------------------------
PRECISIONS = ("fp32", "fp16", "bf16", "int8")  # what an artifact is computed in (docs/precision.md)
GRAPHS = ("lowered", "interleaved", "plain", "phases")  # export/lower.py's forms of one fp32 graph
# How an int8 file quantizes its activations: s8 (signed, symmetric: the Q/DQ form TensorRT takes; the
# default, and every int8 file made before the key) or u8 (unsigned, asymmetric: the form ONNX Runtime's
# x86 int8 kernels run fastest, which TensorRT does not take).
INT8_ACTIVATIONS = ("s8", "u8")

# --- metadata --------------------------------------------------------------------------------------
METADATA_SCHEMA = 2
_PREFIX = "gantool."
SCHEMA_KEY = _PREFIX + "schema_version"
SPEC_KEY = _PREFIX + "spec"
NOISE_KEY = _PREFIX + "noise_function"
VERSION_KEY = _PREFIX + "version"
PRECISION_KEY = _PREFIX + "precision"
GRAPH_KEY = _PREFIX + "graph"
FLOPS_KEY = _PREFIX + "flops_per_sample"
ACTIVATION_KEY = _PREFIX + "peak_activation_values"
FAMILY_KEY = _PREFIX + "family"  # the digest of the weights every variant of one export was made from
VALIDATION_KEY = _PREFIX + "validation"  # JSON: the checks this file passed, per precision and engine
CONDITION_KEY = _PREFIX + "condition"  # CONDITIONS; absent: labels (every file made before mix graphs)
INT8_ACTIVATIONS_KEY = _PREFIX + "int8_activations"  # INT8_ACTIVATIONS, int8 files only; absent: s8
_KEYS = (SCHEMA_KEY, SPEC_KEY, NOISE_KEY, VERSION_KEY, PRECISION_KEY, GRAPH_KEY, FLOPS_KEY, ACTIVATION_KEY,
         FAMILY_KEY, VALIDATION_KEY, CONDITION_KEY, INT8_ACTIVATIONS_KEY)


@dataclass(frozen=True)
class Validation:
    """One check a file passed at export: running in `precision` on `engine` (bf16: OpenVINO's bf16
    inference on this fp32 graph; int8: the Q/DQ graph itself) against torch fp32, on the CPU named."""

    precision: str
    engine: str
    passed: bool
    cpu: str
    checks: dict[str, float]  # agreement, label_drift, fd_between, max_abs ...: what was measured

    def to_dict(self) -> dict[str, Any]:
        return {"precision": self.precision, "engine": self.engine, "passed": self.passed, "cpu": self.cpu,
                "checks": dict(self.checks)}

    @classmethod
    def from_dict(cls, d: Any, source: str) -> "Validation":
        if not isinstance(d, dict) or d.get("precision") not in PRECISIONS or not isinstance(d.get("engine"), str) \
                or not isinstance(d.get("passed"), bool) or not isinstance(d.get("checks", {}), dict):
            raise MetadataError(f"{source}: an entry of {VALIDATION_KEY} is malformed: {str(d)[:80]!r}.")
        checks = {str(k): float(v) for k, v in d.get("checks", {}).items() if isinstance(v, (int, float))}
        return cls(d["precision"], d["engine"], d["passed"], str(d.get("cpu", "")), checks)


@dataclass(frozen=True)
class GeneratorMetadata:
    """Everything a generator file says about itself; the only form the rest of gantool reads."""

    spec: ModelSpec
    precision: str = "fp32"
    graph: str = "lowered"
    gantool_version: str = ""
    flops_per_sample: int | None = None  # counted before lowering: useful work only
    peak_activation_values: int | None = None  # the largest tensor of one sample: the CPU chunk size
    family: str | None = None  # FAMILY_KEY: files with the same family are variants of one model
    validations: tuple[Validation, ...] = ()
    condition: str = LABELS  # CONDITION_KEY: what the conditional graph takes beside z
    int8_activations: str = "s8"  # INT8_ACTIVATIONS_KEY: how an int8 file quantizes activations
    extra: dict[str, str] = field(default_factory=dict)  # non-gantool metadata_props, kept as they are

    def validated(self, precision: str, engine: str) -> bool:
        """Did this file pass its export checks for running in `precision` on `engine`? fp32 files are
        checked by their export's parity against torch (it refuses to write a file that fails it)."""
        if precision == "fp32" == self.precision:
            return True
        return any(v.passed and v.precision == precision and v.engine == engine for v in self.validations)

    @property
    def contract(self) -> GeneratorContract:
        return GeneratorContract(self.spec, self.condition)

    def replace(self, **changes: Any) -> "GeneratorMetadata":
        import dataclasses

        return dataclasses.replace(self, **changes)


def write_metadata(meta: GeneratorMetadata) -> dict[str, str]:
    """The metadata_props (or a sidecar's "metadata") of a generator file."""
    if meta.precision not in PRECISIONS or meta.graph not in GRAPHS:
        raise GantoolError(f"metadata precision {meta.precision!r} / graph {meta.graph!r}; allowed: "
                           f"{', '.join(PRECISIONS)} / {', '.join(GRAPHS)}.")
    props = {SCHEMA_KEY: str(METADATA_SCHEMA), SPEC_KEY: json.dumps(meta.spec.to_dict(), sort_keys=True),
             NOISE_KEY: NOISE_FUNCTION, VERSION_KEY: meta.gantool_version, PRECISION_KEY: meta.precision,
             GRAPH_KEY: meta.graph}
    if meta.flops_per_sample is not None:
        props[FLOPS_KEY] = str(meta.flops_per_sample)
    if meta.peak_activation_values is not None:
        props[ACTIVATION_KEY] = str(meta.peak_activation_values)
    if meta.family is not None:
        props[FAMILY_KEY] = meta.family
    if meta.validations:
        props[VALIDATION_KEY] = json.dumps([v.to_dict() for v in meta.validations], sort_keys=True)
    if meta.condition != LABELS:
        if meta.condition not in CONDITIONS or not meta.spec.conditional:
            raise GantoolError(f"metadata condition {meta.condition!r} for a {'' if meta.spec.conditional else 'un'}"
                               f"conditional model; allowed: {', '.join(CONDITIONS)} (conditional models only).")
        props[CONDITION_KEY] = meta.condition
    if meta.int8_activations != "s8":
        if meta.int8_activations not in INT8_ACTIVATIONS or meta.precision != "int8":
            raise GantoolError(f"metadata int8_activations {meta.int8_activations!r} for a {meta.precision} file; "
                               f"allowed: {', '.join(INT8_ACTIVATIONS)} (int8 files only).")
        props[INT8_ACTIVATIONS_KEY] = meta.int8_activations
    return {**meta.extra, **props}


def is_gantool_metadata(props: Mapping[str, str]) -> bool:
    return any(k.startswith(_PREFIX) for k in props)


def read_metadata(props: Mapping[str, Any], source: str) -> GeneratorMetadata:
    """Validate a file's metadata: schema version, noise function and every field's type and range.

    Raises MetadataError with one line that says what is wrong; never trusts a value it has not checked.
    """
    if not isinstance(props, Mapping) or not is_gantool_metadata(props):
        raise MetadataError(f"{source} is not a gantool generator: it has no gantool.* metadata.",
                            note="export generators with gantool export; it writes the metadata the runtime reads.")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in props.items()):
        raise MetadataError(f"{source}: its metadata must map strings to strings.")
    schema = props.get(SCHEMA_KEY)
    if schema != str(METADATA_SCHEMA):
        raise MetadataError(f"{source}: gantool metadata schema {schema!r}; this gantool reads schema "
                            f"{METADATA_SCHEMA}.", note="re-export the model with this gantool (gantool export).")
    noise = props.get(NOISE_KEY)
    if noise != NOISE_FUNCTION:
        raise MetadataError(f"{source} was made for the noise function {noise!r}, but this gantool draws "
                            f"{NOISE_FUNCTION!r}: a seed would not give the images it was checked with.",
                            note="re-export the model with this gantool, or use the gantool it was made with.")
    unknown = sorted(k for k in props if k.startswith(_PREFIX) and k not in _KEYS)
    if unknown:
        raise MetadataError(f"{source}: unknown gantool metadata keys {unknown}; schema {METADATA_SCHEMA} has "
                            f"{', '.join(_KEYS)}.")
    try:
        spec_json = json.loads(props.get(SPEC_KEY, ""))
    except (ValueError, RecursionError):
        raise MetadataError(f"{source}: its {SPEC_KEY} is not valid JSON.") from None
    try:
        spec = ModelSpec.from_dict(spec_json)
    except GantoolError as e:
        raise MetadataError(f"{source}: {e}") from None
    precision, graph = props.get(PRECISION_KEY), props.get(GRAPH_KEY)
    if precision not in PRECISIONS:
        raise MetadataError(f"{source}: {PRECISION_KEY} is {precision!r}; allowed: {', '.join(PRECISIONS)}.")
    if graph not in GRAPHS:
        raise MetadataError(f"{source}: {GRAPH_KEY} is {graph!r}; allowed: {', '.join(GRAPHS)}.")
    condition = props.get(CONDITION_KEY, LABELS)
    if condition not in CONDITIONS or (condition != LABELS and not spec.conditional):
        raise MetadataError(f"{source}: {CONDITION_KEY} is {condition!r}; allowed: {', '.join(CONDITIONS)} "
                            f"(class_weights for conditional models only).")
    activations = props.get(INT8_ACTIVATIONS_KEY, "s8")
    if activations not in INT8_ACTIVATIONS or (activations != "s8" and precision != "int8"):
        raise MetadataError(f"{source}: {INT8_ACTIVATIONS_KEY} is {activations!r}; allowed: "
                            f"{', '.join(INT8_ACTIVATIONS)} (int8 files only).")
    family = props.get(FAMILY_KEY)
    if family is not None and not (family.isascii() and family.isalnum() and 8 <= len(family) <= 64):
        raise MetadataError(f"{source}: {FAMILY_KEY} must be a hex digest, got {family[:40]!r}.")
    return GeneratorMetadata(spec=spec, precision=precision, graph=graph, gantool_version=props.get(VERSION_KEY, ""),
                             flops_per_sample=_count(props, FLOPS_KEY, source),
                             peak_activation_values=_count(props, ACTIVATION_KEY, source),
                             family=family, validations=_validations(props, source), condition=condition,
                             int8_activations=activations, extra={k: v for k, v in props.items() if not k.startswith(_PREFIX)})


def _validations(props: Mapping[str, str], source: str) -> tuple[Validation, ...]:
    if VALIDATION_KEY not in props:
        return ()
    try:
        entries = json.loads(props[VALIDATION_KEY])
    except (ValueError, RecursionError):
        raise MetadataError(f"{source}: its {VALIDATION_KEY} is not valid JSON.") from None
    if not isinstance(entries, list):
        raise MetadataError(f"{source}: its {VALIDATION_KEY} must be a JSON list.")
    return tuple(Validation.from_dict(e, source) for e in entries)


def _count(props: Mapping[str, str], key: str, source: str) -> int | None:
    if key not in props:
        return None
    text = props[key]
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise MetadataError(f"{source}: {key} must be a non-negative integer, got {text[:40]!r}.")
    return int(text)

