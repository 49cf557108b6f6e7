import pytest

from gantool.errors import CheckpointError
from gantool.spec import ModelSpec


def test_spec_round_trips_through_a_dict():
    s = ModelSpec(arch="cgan", latent_dim=100, num_classes=10, conditional=True, image_size=28)
    assert ModelSpec.from_dict(s.to_dict()) == s
    assert s.image_shape == (1, 28, 28)


def test_spec_rejects_other_schema_and_unknown_fields():
    d = ModelSpec(arch="gan", latent_dim=100, num_classes=10, conditional=False, image_size=28).to_dict()
    with pytest.raises(CheckpointError, match="schema version 99"):
        ModelSpec.from_dict({**d, "schema_version": 99})
    with pytest.raises(CheckpointError, match="unknown fields"):
        ModelSpec.from_dict({**d, "colour": "red"})
