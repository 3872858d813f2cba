"""Triton config.pbtxt as a typed value: written and parsed through Triton's own protobuf schema.

The text is produced by protobuf's text_format from a message built field by field, so nothing a
user types (a model name, a tensor name) is ever pasted into the file as text; parsing goes
through the same schema, so a field Triton would reject is rejected here too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as pb

from sloscale_runtime.errors import RuntimeInputError

BACKENDS = ("python", "pytorch", "onnxruntime")
INSTANCE_KINDS = ("KIND_AUTO", "KIND_CPU", "KIND_GPU")  # AUTO: Triton picks (its default)
# Triton uses the model name as a directory and in URLs: keep it to a safe alphabet.
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True)
class TensorSpec:
    name: str
    data_type: str  # TYPE_FP32 ...
    dims: tuple[int, ...]  # without the batch dimension when max_batch_size > 0


@dataclass(frozen=True)
class DynamicBatching:
    preferred_batch_sizes: tuple[int, ...]
    max_queue_delay_us: int


@dataclass(frozen=True)
class ModelConfig:
    name: str
    backend: str
    max_batch_size: int
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    dynamic_batching: DynamicBatching | None = None
    instance_kind: str = "KIND_CPU"
    instance_count: int = 1
    parameters: dict[str, str] = field(default_factory=dict)


def check_name(name: str, *, field_name: str = "name") -> str:
    if not _NAME_RE.match(name):
        raise RuntimeInputError(
            f"{field_name}: {name!r} is not a valid model name "
            "(letters, digits, '_', '.', '-'; at most 128; not starting with a symbol)"
        )
    return name


def validate(config: ModelConfig) -> ModelConfig:
    """Check what the protobuf schema cannot: value ranges and cross-field rules."""
    check_name(config.name)
    if config.backend not in BACKENDS:
        raise RuntimeInputError(f"backend: {config.backend!r} not one of {BACKENDS}")
    if config.instance_kind not in INSTANCE_KINDS:
        raise RuntimeInputError(f"instance_group.kind: {config.instance_kind!r}")
    if config.max_batch_size < 0 or config.instance_count < 1:
        raise RuntimeInputError("max_batch_size must be >= 0 and instance_group.count >= 1")
    if not config.inputs or not config.outputs:
        raise RuntimeInputError("config needs at least one input and one output")
    batching = config.dynamic_batching
    if batching is not None:
        if config.max_batch_size == 0:
            raise RuntimeInputError("dynamic_batching needs max_batch_size > 0")
        too_big = [s for s in batching.preferred_batch_sizes if not 0 < s <= config.max_batch_size]
        if too_big:
            raise RuntimeInputError(
                f"dynamic_batching.preferred_batch_size {too_big} outside 1..max_batch_size"
            )
        if batching.max_queue_delay_us < 0:
            raise RuntimeInputError("dynamic_batching.max_queue_delay_microseconds must be >= 0")
    return config


def to_pbtxt(config: ModelConfig) -> str:
    validate(config)
    message = pb.ModelConfig(
        name=config.name, backend=config.backend, max_batch_size=config.max_batch_size
    )
    for spec, target in [(s, message.input) for s in config.inputs] + [
        (s, message.output) for s in config.outputs
    ]:
        target.add(name=spec.name, data_type=pb.DataType.Value(spec.data_type), dims=spec.dims)
    if config.dynamic_batching is not None:
        message.dynamic_batching.preferred_batch_size.extend(
            config.dynamic_batching.preferred_batch_sizes
        )
        message.dynamic_batching.max_queue_delay_microseconds = (
            config.dynamic_batching.max_queue_delay_us
        )
    message.instance_group.add(
        count=config.instance_count, kind=pb.ModelInstanceGroup.Kind.Value(config.instance_kind)
    )
    for key, value in sorted(config.parameters.items()):
        message.parameters[key].string_value = value
    return text_format.MessageToString(message)


def parse_pbtxt(text: str, *, source: str = "config.pbtxt") -> ModelConfig:
    """Parse config.pbtxt text; errors name the source file and protobuf's line:column."""
    try:
        message = text_format.Parse(text, pb.ModelConfig())
    except text_format.ParseError as error:
        raise RuntimeInputError(f"{source}: {error}") from error
    batching = None
    if message.HasField("dynamic_batching"):
        batching = DynamicBatching(
            tuple(message.dynamic_batching.preferred_batch_size),
            message.dynamic_batching.max_queue_delay_microseconds,
        )
    groups = list(message.instance_group) or [pb.ModelInstanceGroup(count=1)]
    config = ModelConfig(
        name=message.name,
        backend=message.backend,
        max_batch_size=message.max_batch_size,
        inputs=tuple(_tensor(t) for t in message.input),
        outputs=tuple(_tensor(t) for t in message.output),
        dynamic_batching=batching,
        instance_kind=pb.ModelInstanceGroup.Kind.Name(groups[0].kind),
        instance_count=groups[0].count,
        parameters={k: v.string_value for k, v in message.parameters.items()},
    )
    try:
        return validate(config)
    except RuntimeInputError as error:
        raise RuntimeInputError(f"{source}: {error}") from error


def _tensor(message: pb.ModelInput | pb.ModelOutput) -> TensorSpec:
    return TensorSpec(message.name, pb.DataType.Name(message.data_type), tuple(message.dims))
