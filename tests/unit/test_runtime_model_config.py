"""config.pbtxt writing and parsing through Triton's protobuf schema."""

from __future__ import annotations

import pytest

from sloscale_runtime.errors import RuntimeInputError
from sloscale_runtime.model_config import (
    DynamicBatching,
    ModelConfig,
    TensorSpec,
    parse_pbtxt,
    to_pbtxt,
)

IMAGE = TensorSpec("INPUT__0", "TYPE_FP32", (3, 32, 32))
LOGITS = TensorSpec("OUTPUT__0", "TYPE_FP32", (10,))


def config(**overrides: object) -> ModelConfig:
    fields: dict[str, object] = dict(
        name="cnn", backend="python", max_batch_size=16, inputs=(IMAGE,), outputs=(LOGITS,),
        dynamic_batching=DynamicBatching((4, 8), 500), parameters={"torch_num_threads": "1"},
    )
    fields.update(overrides)
    return ModelConfig(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "value",
    [
        config(),
        config(backend="pytorch", parameters={}),
        config(backend="onnxruntime", instance_kind="KIND_GPU", instance_count=2),
        config(max_batch_size=0, dynamic_batching=None,
               inputs=(TensorSpec("INPUT__0", "TYPE_INT64", (1, 7)),)),
        config(outputs=(LOGITS, TensorSpec("OUTPUT__1", "TYPE_BOOL", (1,)))),
    ],
)
def test_round_trip(value: ModelConfig) -> None:
    assert parse_pbtxt(to_pbtxt(value)) == value


def test_written_text_uses_triton_field_names() -> None:
    text = to_pbtxt(config())
    for expected in ('name: "cnn"', 'backend: "python"', "max_batch_size: 16",
                     "preferred_batch_size: 8", "max_queue_delay_microseconds: 500",
                     "kind: KIND_CPU", "data_type: TYPE_FP32"):
        assert expected in text


def test_hostile_name_is_rejected_not_pasted() -> None:
    with pytest.raises(RuntimeInputError, match="name"):
        to_pbtxt(config(name='x"\nbackend: "evil'))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (config(backend="tensorrt"), "backend"),
        (config(max_batch_size=0), "dynamic_batching needs max_batch_size"),
        (config(dynamic_batching=DynamicBatching((32,), 0)), "preferred_batch_size"),
        (config(dynamic_batching=DynamicBatching((4,), -1)), "max_queue_delay"),
        (config(instance_kind="KIND_TPU"), "instance_group.kind"),
        (config(instance_count=0), "instance_group.count"),
        (config(outputs=()), "at least one input and one output"),
        (config(name=""), "name"),
    ],
)
def test_invalid_configs_are_rejected(value: ModelConfig, message: str) -> None:
    with pytest.raises(RuntimeInputError, match=message):
        to_pbtxt(value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('name: "m" backend: "python" max_batch_size: 4 bogus_field: 1', r"cfg\.pbtxt:.*bogus"),
        ('name: "m" backend: "python" input { name: "a" data_type: TYPE_NOPE }', "TYPE_NOPE"),
        ('name: "m" backend: "python" max_batch_size: 4', "at least one input"),
        ('name: "m" {', r"cfg\.pbtxt"),
    ],
)
def test_parse_errors_name_the_file(text: str, message: str) -> None:
    with pytest.raises(RuntimeInputError, match=message):
        parse_pbtxt(text, source="cfg.pbtxt")
